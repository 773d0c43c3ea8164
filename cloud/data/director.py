"""Deployments: director documents issued to gateways, the fleet's desired state, gateways not yet directed."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, Table, Text

from cloud.data.metadata import metadata

director_documents = Table(
    "director_documents",
    metadata,
    Column("gateway_id", Text, primary_key=True, nullable=True),
    Column("sequence", Integer),
    Column("document_json", Text),
    Column("published_at", Text),
)


director_fleet = Table(
    "director_fleet",
    metadata,
    Column("model_name", Text, primary_key=True, nullable=True),
    Column("desired_json", Text, nullable=False),
)


director_failures = Table(
    "director_failures",
    metadata,
    Column("gateway_id", Text, primary_key=True, nullable=True),
    Column("updates_json", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("first_failed_at", Text, nullable=False),
    Column("failed_at", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
)


director_issued = Table(
    "director_issued",
    metadata,
    Column("document_digest", Text, primary_key=True, nullable=True),
    Column("gateway_id", Text, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("issued_at", Text, nullable=False),
    Index("director_issued_gateway", "gateway_id", "sequence"),
)
