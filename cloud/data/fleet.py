"""Gateways and their devices, the events gateways report, and security events about documents never issued.

A trigger on ``gateway_events`` (in the revisions, once per dialect) records the ``security_events`` row of an event
naming a director document never issued to its gateway, in the transaction that stores the event.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, Table, Text

from cloud.data.metadata import metadata, partial

gateways = Table(
    "gateways",
    metadata,
    Column("gateway_id", Text, primary_key=True, nullable=True),
    Column("first_seen", Text),
    Column("last_seen", Text),
    Column("online", Integer),
    Column("agent_version", Text),
    Column("director_sequence", Integer),
    Column("status_json", Text),
)


devices = Table(
    "devices",
    metadata,
    Column("device_id", Text, primary_key=True, nullable=True),
    Column("gateway_id", Text),
    Column("device_type", Text),
    Column("first_seen", Text),
    Column("last_seen", Text),
)


gateway_events = Table(
    "gateway_events",
    metadata,
    Column("msg_id", Text, primary_key=True, nullable=True),
    Column("gateway_id", Text),
    Column("kind", Text),
    Column("model_name", Text),
    Column("model_version", Text),
    Column("director_sequence", Integer),
    Column("rule", Text),
    Column("detail", Text),
    Column("sent_at", Text),
    Column("document_digest", Text),
    Index("idx_gateway_events_gateway_id_sent_at", "gateway_id", "sent_at"),
)


security_events = Table(
    "security_events",
    metadata,
    Column("gateway_id", Text, primary_key=True),
    Column("document_digest", Text, primary_key=True),
    Column("issued_to", Text),
    Column("kind", Text, nullable=False),
    Column("rule", Text),
    Column("detail", Text),
    Column("director_sequence", Integer),
    Column("first_seen_at", Text, nullable=False),
    Column("last_seen_at", Text, nullable=False),
    Column("sightings", Integer, nullable=False),
    Column("first_msg_id", Text, nullable=False),
    Column("alerted_at", Text),
    Index("security_events_last_seen", "last_seen_at"),
    Index("security_events_unalerted", "first_seen_at", **partial("alerted_at IS NULL")),
)
