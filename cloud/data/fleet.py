"""Gateways and their devices, the events gateways report, and security events about documents never issued.

A trigger on ``gateway_events`` (in the revisions, once per dialect) records the ``security_events`` row of an event
naming a director document never issued to its gateway, in the transaction that stores the event.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Column, Connection, Index, Integer, RowMapping, Table, Text, bindparam, func, select, update

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


# -- gateways and devices ------------------------------------------------------------------------


def gateway_ids(connection: Connection) -> list[str]:
    """Every gateway that has reported (``up/status``), by id."""
    return list(connection.execute(select(gateways.c.gateway_id).order_by(gateways.c.gateway_id)).scalars())


def reported_director_sequence(connection: Connection, gateway_id: str) -> Any:
    """The director sequence the gateway last reported accepting, as stored (None: none reported, or unknown)."""
    query = select(gateways.c.director_sequence).where(gateways.c.gateway_id == gateway_id)
    return connection.execute(query).scalar()


def gateways_with_device_counts(connection: Connection, gateway_id: str | None = None) -> list[RowMapping]:
    """Every gateway's row (or the one named) with ``devices``, how many devices it has, by gateway."""
    counted = select(devices.c.gateway_id, func.count().label("devices")).group_by(devices.c.gateway_id).subquery()
    query = (
        select(gateways, func.coalesce(counted.c.devices, 0).label("devices"))
        .select_from(gateways.outerjoin(counted, counted.c.gateway_id == gateways.c.gateway_id))
        .order_by(gateways.c.gateway_id)
    )
    if gateway_id is not None:
        query = query.where(gateways.c.gateway_id == gateway_id)
    return list(connection.execute(query).mappings())


def device_ids(connection: Connection, gateway_id: str) -> list[str]:
    """The devices seen behind the gateway, by id."""
    query = select(devices.c.device_id).where(devices.c.gateway_id == gateway_id).order_by(devices.c.device_id)
    return list(connection.execute(query).scalars())


def gateways_serving(connection: Connection, device_types: Collection[str]) -> list[str]:
    """Gateways with a device of any of ``device_types``, by id."""
    query = (
        select(devices.c.gateway_id)
        .distinct()
        .where(devices.c.device_type.in_(sorted(device_types)), devices.c.gateway_id.is_not(None))
        .order_by(devices.c.gateway_id)
    )
    return list(connection.execute(query).scalars())


def recent_events(connection: Connection, gateway_id: str, limit: int) -> list[RowMapping]:
    """The gateway's ``limit`` latest events, newest first."""
    query = (
        select(gateway_events)
        .where(gateway_events.c.gateway_id == gateway_id)
        .order_by(gateway_events.c.sent_at.desc())
        .limit(limit)
    )
    return list(connection.execute(query).mappings())


# -- security events -----------------------------------------------------------------------------

#: what a security event's reader gets (``first_msg_id`` stays in the table)
_SECURITY_EVENT = [column for column in security_events.c if column.name != "first_msg_id"]


def security_events_seen(
    connection: Connection, gateway_id: str | None, since: str | None, limit: int
) -> list[RowMapping]:
    """The documents seen (again) since ``since`` on one gateway or all, newest sighting first, at most ``limit``."""
    query = select(*_SECURITY_EVENT).order_by(security_events.c.last_seen_at.desc(), security_events.c.gateway_id)
    if gateway_id is not None:
        query = query.where(security_events.c.gateway_id == gateway_id)
    if since is not None:
        query = query.where(security_events.c.last_seen_at >= since)
    return list(connection.execute(query.limit(limit)).mappings())


def security_event_counts(connection: Connection, gateway_id: str | None) -> list[RowMapping]:
    """Per gateway that saw any (or the one named): ``documents``, ``sightings`` and ``last_seen_at``."""
    query = (
        select(
            security_events.c.gateway_id,
            func.count().label("documents"),
            func.sum(security_events.c.sightings).label("sightings"),
            func.max(security_events.c.last_seen_at).label("last_seen_at"),
        )
        .group_by(security_events.c.gateway_id)
        .order_by(security_events.c.gateway_id)
    )
    if gateway_id is not None:
        query = query.where(security_events.c.gateway_id == gateway_id)
    return list(connection.execute(query).mappings())


#: built once: the ingest worker claims after every batch it stores
_CLAIM_UNALERTED = (
    update(security_events)
    .where(security_events.c.alerted_at.is_(None))
    .values(alerted_at=bindparam("at"))
    .returning(*_SECURITY_EVENT)
)


def claim_unalerted_security_events(connection: Connection, at: str) -> list[RowMapping]:
    """Mark every security event not alerted yet as alerted at ``at`` and return them: one statement, so two
    callers never claim the same one."""
    return list(connection.execute(_CLAIM_UNALERTED, {"at": at}).mappings())


def gateways_silent(connection: Connection, since: str, before: str, limit: int) -> list[RowMapping]:
    """Gateways last heard from between ``since`` and ``before`` (silent since), longest silent first: those an
    alert names as offline (``since`` keeps gateways gone for good from being named on every pass)."""
    query = (
        select(gateways.c.gateway_id, gateways.c.last_seen, gateways.c.online)
        .where(gateways.c.last_seen >= since, gateways.c.last_seen < before)
        .order_by(gateways.c.last_seen, gateways.c.gateway_id)
        .limit(limit)
    )
    return list(connection.execute(query).mappings())
