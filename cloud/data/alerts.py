"""The alert inbox: what needs a person's attention, who acknowledged and resolved it, and what the webhook was sent.

One row per alert, found once by its ``fingerprint`` (the source's stable name for the condition, e.g.
``training-failed:<run id>``), so a scan that sees the same condition again adds nothing. ``notified_state`` is the
state last delivered to the webhook: a row whose state differs is due (an outbox, retried every pass until sent).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Index,
    Integer,
    RowMapping,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    or_,
    select,
    update,
)

from cloud.data.metadata import metadata

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("labels_json", Text, nullable=False),
    Column("started_at", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("acknowledged_by", Text),
    Column("acknowledged_at", Text),
    Column("resolved_by", Text),
    Column("resolved_at", Text),
    Column("notified_state", Text),
    Column("notify_attempts", Integer, nullable=False, server_default="0"),
    Column("notify_error", Text),
    UniqueConstraint("fingerprint", name="uq_alerts_fingerprint"),
    Index("idx_alerts_state_id", "state", "id"),
)


def known_fingerprints(connection: Connection, fingerprints: Collection[str]) -> set[str]:
    """Which of ``fingerprints`` already have an alert, in whatever state."""
    if not fingerprints:
        return set()
    query = select(alerts.c.fingerprint).where(alerts.c.fingerprint.in_(list(fingerprints)))
    return set(connection.execute(query).scalars())


def add(connection: Connection, row: Mapping[str, Any]) -> int:
    """Store a new open alert; its id."""
    values = dict(row) | {"state": OPEN, "notify_attempts": 0}
    return connection.execute(insert(alerts).values(values)).inserted_primary_key[0]


def unresolved_of_kinds(connection: Connection, kinds: Collection[str]) -> list[RowMapping]:
    """Alerts of ``kinds`` not yet resolved: those a source may find cleared."""
    query = select(alerts).where(alerts.c.kind.in_(list(kinds)), alerts.c.state != RESOLVED)
    return list(connection.execute(query).mappings())


def find(connection: Connection, alert_id: int) -> RowMapping | None:
    return connection.execute(select(alerts).where(alerts.c.id == alert_id)).mappings().first()


def move(connection: Connection, alert_id: int, to: str, by: str, at: str, from_: Collection[str]) -> bool:
    """Move the alert to ``to`` (acknowledged or resolved) if it is in one of ``from_``; whether it moved."""
    stamp = (
        {"acknowledged_by": by, "acknowledged_at": at} if to == ACKNOWLEDGED else {"resolved_by": by, "resolved_at": at}
    )
    query = update(alerts).where(alerts.c.id == alert_id, alerts.c.state.in_(list(from_))).values(state=to, **stamp)
    return connection.execute(query).rowcount > 0


def page(connection: Connection, state: str | None, before_id: int | None, limit: int) -> list[RowMapping]:
    """Newest first, at most ``limit``, of one state or all; page on with ``before_id`` set to the last id."""
    query = select(alerts).order_by(alerts.c.id.desc()).limit(limit)
    if state:
        query = query.where(alerts.c.state == state)
    if before_id:
        query = query.where(alerts.c.id < before_id)
    return list(connection.execute(query).mappings())


def counts_by_state(connection: Connection) -> dict[str, int]:
    query = select(alerts.c.state, func.count()).group_by(alerts.c.state)
    return {state: count for state, count in connection.execute(query)}


def undelivered(connection: Connection, limit: int) -> list[RowMapping]:
    """Alerts whose state the webhook has not been sent yet, oldest first."""
    due = or_(alerts.c.notified_state.is_(None), alerts.c.notified_state != alerts.c.state)
    return list(connection.execute(select(alerts).where(due).order_by(alerts.c.id).limit(limit)).mappings())


def delivered(connection: Connection, alert_id: int, state: str) -> None:
    """The webhook took the alert in ``state``."""
    query = update(alerts).where(alerts.c.id == alert_id).values(notified_state=state, notify_error=None)
    connection.execute(query)


def delivery_failed(connection: Connection, alert_ids: Collection[int], error: str) -> None:
    """The webhook refused or could not be reached: counted, kept due."""
    query = (
        update(alerts)
        .where(alerts.c.id.in_(list(alert_ids)))
        .values(notify_attempts=alerts.c.notify_attempts + 1, notify_error=error[:500])
    )
    connection.execute(query)
