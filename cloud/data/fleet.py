"""Gateways and their devices, the events gateways report, and security events about documents never issued.

A trigger on ``gateway_events`` (in the revisions, once per dialect) records the ``security_events`` row of an event
naming a director document never issued to its gateway, in the transaction that stores the event.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    Row,
    RowMapping,
    Table,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB

from cloud.data.bulk import BulkInsert
from cloud.data.metadata import BIGINT, epoch_ms, metadata, partial

gateways = Table(
    "gateways",
    metadata,
    Column("gateway_id", Text, primary_key=True, nullable=True),
    Column("first_seen", Text),
    Column("last_seen", Text),
    Column("online", Integer),
    Column("agent_version", Text),
    Column("director_sequence", BIGINT),
    Column("status_json", Text),
    Index("idx_gateways_last_seen_online", "last_seen", "online"),
)


devices = Table(
    "devices",
    metadata,
    Column("device_id", Text, primary_key=True, nullable=True),
    Column("gateway_id", Text),
    Column("device_type", Text),
    Column("first_seen", Text),
    Column("last_seen", Text),
    Index("idx_devices_gateway_id", "gateway_id"),
)


gateway_events = Table(
    "gateway_events",
    metadata,
    Column("msg_id", Text, primary_key=True, nullable=True),
    Column("gateway_id", Text),
    Column("kind", Text),
    Column("model_name", Text),
    Column("model_version", Text),
    Column("director_sequence", BIGINT),
    Column("rule", Text),
    Column("detail", Text),
    Column("sent_at", Text),
    Column("document_digest", Text),
    Index("idx_gateway_events_gateway_id_sent_at", "gateway_id", "sent_at"),
    # for the director's deployment_rows: one gateway's events of one kind about one model, by time (revision 0008)
    Index("idx_gateway_events_gateway_kind_model", "gateway_id", "kind", "model_name", "sent_at"),
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
    Column("director_sequence", BIGINT),
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


# -- devices and events, as monitoring and experiments read them ---------------------------------------------------


def has_device(connection: Connection, device_id: str) -> bool:
    """Whether a gateway has reported the device."""
    query = select(devices.c.device_id).where(devices.c.device_id == device_id).limit(1)
    return connection.execute(query).first() is not None


def device_types_by_device(connection: Connection) -> dict[str, str]:
    """device id → device type of every device whose type is known."""
    query = select(devices.c.device_id, devices.c.device_type).where(devices.c.device_type.is_not(None))
    return dict(connection.execute(query).all())


def known_device_types(connection: Connection) -> list[str]:
    """The device types of the fleet's devices, by name (an empty type left out)."""
    query = select(devices.c.device_type).distinct().where(devices.c.device_type != "")
    return list(connection.execute(query.order_by(devices.c.device_type)).scalars())


def version_event_counts(
    connection: Connection, model_name: str, model_version: str, kinds: Collection[str], since: str, until: str | None
) -> dict[str, int]:
    """kind → how many events of each of ``kinds`` gateways sent about the version in [since, until] (no end
    without ``until``); kinds without any are left out."""
    events = gateway_events.c
    query = select(events.kind, func.count()).where(
        events.model_name == model_name, events.model_version == model_version, events.kind.in_(sorted(kinds))
    )
    query = query.where(events.sent_at >= since) if until is None else query.where(events.sent_at.between(since, until))
    return dict(connection.execute(query.group_by(events.kind)).all())


def model_event_counts(
    connection: Connection, model_name: str, start: str, end: str, start_ms: int, window_ms: int
) -> list[Row]:
    """(model_version, window, kind, events) of the model's gateway events sent in [start, end) (``start_ms``: the
    same time in epoch milliseconds): ``window`` counts the ``window_ms`` spans since then. By version, window and
    kind."""
    events = gateway_events.c
    since_start = epoch_ms(events.sent_at) - literal(start_ms, BigInteger)
    window = (since_start // literal(window_ms, BigInteger)).label("w")
    query = (
        select(events.model_version, window, events.kind, func.count())
        .where(events.model_name == model_name, events.sent_at >= start, events.sent_at < end)
        .group_by(events.model_version, window, events.kind)
        .order_by(events.model_version, window, events.kind)
    )
    return list(connection.execute(query))


# ---- what ingest and the feature store learn of gateways and devices -----------------------------------------


def _earlier(dialect: str) -> Any:
    """The smaller of two values in SQL (SQLite's ``min`` of two arguments is PostgreSQL's ``least``)."""
    return func.least if dialect == "postgresql" else func.min


def _later(dialect: str) -> Any:
    return func.greatest if dialect == "postgresql" else func.max


def _devices_seen(insert: Any, dialect: str) -> Any:
    statement = insert(devices)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["device_id"],
        set_={
            "gateway_id": new.gateway_id,
            "device_type": new.device_type,
            "first_seen": _earlier(dialect)(devices.c.first_seen, new.first_seen),
            "last_seen": _later(dialect)(devices.c.last_seen, new.last_seen),
        },
    )


def _devices_known(insert: Any, dialect: str) -> Any:
    statement = insert(devices)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["device_id"],
        set_={
            "device_type": func.coalesce(devices.c.device_type, new.device_type),
            "first_seen": _earlier(dialect)(func.coalesce(devices.c.first_seen, new.first_seen), new.first_seen),
            "last_seen": _later(dialect)(func.coalesce(devices.c.last_seen, new.last_seen), new.last_seen),
        },
    )


#: a device as ingest saw it, for ``record_devices_seen``: its gateway and type, and the data times it reported
DEVICE_SEEN = ("device_id", "gateway_id", "device_type", "first_seen", "last_seen")
_SEEN = BulkInsert(_devices_seen, DEVICE_SEEN)
#: a device a feature history names, for ``record_devices_known``
DEVICE_KNOWN = ("device_id", "device_type", "first_seen", "last_seen")
_KNOWN = BulkInsert(_devices_known, DEVICE_KNOWN)


def record_devices_seen(connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Ingest's devices (rows in ``DEVICE_SEEN`` order): gateway and type as last reported, the span of data times
    widened to take in the new ones."""
    _SEEN.write(connection, rows)


def record_devices_known(connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Devices a stored history names (rows in ``DEVICE_KNOWN`` order): a type only where none is known (ingest's,
    from live telemetry, wins), the gateway left as it is, the span of data times widened."""
    _KNOWN.write(connection, rows)


def _offline_status(dialect: str) -> Any:
    """The stored status JSON marked offline: ``online`` false and ``health`` "offline", every other field kept."""
    status = gateways.c.status_json
    if dialect == "postgresql":
        offline = cast(literal('{"online": false, "health": "offline"}'), JSONB)
        return cast(cast(status, JSONB).op("||")(offline), Text)
    return func.json_set(status, "$.online", func.json("false"), "$.health", "offline")


def _statuses(insert: Any, dialect: str) -> Any:
    statement = insert(gateways)
    new = statement.excluded
    online = new.online != 0
    return statement.on_conflict_do_update(
        index_elements=["gateway_id"],
        set_={
            "last_seen": new.last_seen,
            "online": new.online,
            "agent_version": case((online, new.agent_version), else_=gateways.c.agent_version),
            "director_sequence": case((online, new.director_sequence), else_=gateways.c.director_sequence),
            "status_json": case((online, new.status_json), else_=_offline_status(dialect)),
        },
    )


#: a gateway's status as ingest received it, for ``record_statuses`` (``first_seen`` and ``last_seen``: when)
GATEWAY_STATUS = (
    "gateway_id",
    "first_seen",
    "last_seen",
    "online",
    "agent_version",
    "director_sequence",
    "status_json",
)
_STATUSES = BulkInsert(_statuses, GATEWAY_STATUS)


def record_statuses(connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Gateways' statuses in arrival order (rows in ``GATEWAY_STATUS`` order; ``online`` 1 or 0), the last one
    winning. An offline status (a last will, built before the connection it outlives) changes only ``online``,
    ``last_seen`` and the stored status's ``online``/``health``: every other field keeps what the last online
    status said.

    One upsert statement may touch a row once on PostgreSQL ("cannot affect row a second time"), so a batch with
    several statuses of one gateway is written in rounds, each holding a gateway at most once, in arrival order."""
    rounds: list[list[Sequence[Any]]] = []
    seen: dict[Any, int] = {}
    for row in rows:
        index = seen[row[0]] = seen.get(row[0], -1) + 1
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(row)
    for batch in rounds:
        _STATUSES.write(connection, batch)


#: a gateway event as ``add_events`` takes it
GATEWAY_EVENT = (
    "msg_id",
    "gateway_id",
    "kind",
    "model_name",
    "model_version",
    "director_sequence",
    "rule",
    "detail",
    "sent_at",
    "document_digest",
)
_EVENTS = BulkInsert(lambda insert, _: insert(gateway_events).on_conflict_do_nothing(), GATEWAY_EVENT)


def add_events(connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Store gateway events (rows in ``GATEWAY_EVENT`` order), keeping any stored before; one naming a document
    never issued to its gateway also records its security event (the table's trigger)."""
    _EVENTS.write(connection, rows)


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


def count_events(connection: Connection, kind: str) -> int:
    """Gateway events of ``kind`` stored, every gateway."""
    query = select(func.count()).select_from(gateway_events).where(gateway_events.c.kind == kind)
    return connection.execute(query).scalar_one()


def gateway_states(connection: Connection, stale_before: str) -> dict[str, int]:
    """How many gateways are online, offline (their last status said so), or online but silent since before
    ``stale_before``: one counting query, however many gateways."""
    g = gateways.c
    offline = func.coalesce(g.online, 0) == 0
    stale = ~offline & (g.last_seen.is_(None) | (g.last_seen < stale_before))
    query = select(func.count(), func.count().filter(offline), func.count().filter(stale))
    every, offline_count, stale_count = connection.execute(query).one()  # one scan; a GROUP BY a CASE costs 3x
    return {"online": every - offline_count - stale_count, "offline": offline_count, "stale": stale_count}


# ---- the Fleet and Gateway pages (issue 12): keyset pages and one gateway's timeline ------------------------------

#: a gateway's connection state, as ``gateway_states`` counts and ``gateway_page`` filters
CONNECTION_STATES = ("online", "offline", "stale")

#: a gateway's last status serves ``:version`` of some model (the status lists them under ``models``)
_SERVES_VERSION = {
    "sqlite": "EXISTS (SELECT 1 FROM json_each(gateways.status_json, '$.models') AS m"
    " WHERE m.value ->> '$.active_version' = :version)",
    "postgresql": "EXISTS (SELECT 1 FROM jsonb_array_elements(CAST(gateways.status_json AS jsonb) -> 'models') AS m"
    " WHERE m ->> 'active_version' = :version)",
}


def _connection_state(stale_before: str) -> Any:
    g = gateways.c
    return case(
        (func.coalesce(g.online, 0) == 0, "offline"),
        (g.last_seen.is_(None) | (g.last_seen < stale_before), "stale"),
        else_="online",
    )


def _prefix_end(prefix: str) -> str:
    """The smallest string after every string starting with ``prefix``: a prefix search is an index range."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def gateway_page(
    connection: Connection,
    stale_before: str,
    limit: int,
    after: str | None = None,
    prefix: str = "",
    state: str | None = None,
    version: str | None = None,
    among: Collection[str] | None = None,
) -> list[RowMapping]:
    """Up to ``limit`` gateways by id after ``after``, with ``state`` (``CONNECTION_STATES``: silent since before
    ``stale_before`` is stale), ids starting with ``prefix``, of that state, serving that version of any model and
    one of ``among`` if asked. One query walking the primary key from ``after`` (the stale ones: an index range):
    as fast at 100,000 gateways as at ten."""
    g = gateways.c
    connection_state = _connection_state(stale_before)
    query = select(gateways, connection_state.label("state")).order_by(g.gateway_id).limit(limit)
    if after is not None:
        query = query.where(g.gateway_id > after)
    if prefix:
        query = query.where(g.gateway_id >= prefix, g.gateway_id < _prefix_end(prefix))
    if among is not None:
        query = query.where(g.gateway_id.in_(sorted(among)))
    if state == "stale":
        # Few as a rule: read them off the (last_seen, online) index and sort them, instead of walking every id
        # until a page matches (every id when none is stale). Ordering by an expression keeps either database from
        # walking the key; ingest stamps every status, so a gateway's last_seen is never NULL.
        stale = (func.coalesce(g.online, 0) != 0) & (g.last_seen < stale_before)
        query = query.where(stale).order_by(None).order_by(g.gateway_id.concat(""))
    elif state is not None:
        query = query.where(connection_state == state)
    if version is not None:
        query = query.where(text(_SERVES_VERSION[connection.dialect.name]).bindparams(version=version))
    return list(connection.execute(query).mappings())


def device_counts(connection: Connection, gateway_ids: Collection[str]) -> dict[str, int]:
    """gateway id → how many devices it has, of the gateways named (those with none left out)."""
    query = (
        select(devices.c.gateway_id, func.count())
        .where(devices.c.gateway_id.in_(sorted(gateway_ids)))
        .group_by(devices.c.gateway_id)
    )
    return dict(connection.execute(query).all())


def gateway_row(connection: Connection, gateway_id: str, stale_before: str) -> RowMapping | None:
    """The gateway's row with its ``state`` (as ``gateway_page`` has it), if it ever reported."""
    query = select(gateways, _connection_state(stale_before).label("state")).where(gateways.c.gateway_id == gateway_id)
    return connection.execute(query).mappings().first()


def before_cursor(time: Any, key: Any, cursor: tuple[str, str | None] | None) -> Any:
    """Rows strictly before ``cursor`` (time, key) in a newest-first order by ``time`` then ``key``, or every row
    without one: the keyset condition each timeline source applies. A key of None keeps every row at that time (a
    merged timeline's source that sorts after the cursor's own at the same instant)."""
    if cursor is None:
        return true()
    at, after_key = cursor
    if after_key is None:
        return time <= at
    return (time <= at) & ((time < at) | (key < after_key))  # the first term: a bound the index range starts from


def events_before(
    connection: Connection, gateway_id: str, cursor: tuple[str, str | None] | None, limit: int
) -> list[RowMapping]:
    """The gateway's events before ``cursor`` (``sent_at``, ``msg_id``), newest first, at most ``limit``: one range
    of the (gateway_id, sent_at) index."""
    e = gateway_events.c
    query = (
        select(gateway_events)
        .where(e.gateway_id == gateway_id, before_cursor(e.sent_at, e.msg_id, cursor))
        .order_by(e.sent_at.desc(), e.msg_id.desc())
        .limit(limit)
    )
    return list(connection.execute(query).mappings())


def security_events_before(
    connection: Connection, gateway_id: str, cursor: tuple[str, str | None] | None, limit: int
) -> list[RowMapping]:
    """The documents never issued to the gateway that it reported, before ``cursor`` (``first_seen_at``,
    ``document_digest``), newest first, at most ``limit``."""
    s = security_events.c
    query = (
        select(*_SECURITY_EVENT)
        .where(s.gateway_id == gateway_id, before_cursor(s.first_seen_at, s.document_digest, cursor))
        .order_by(s.first_seen_at.desc(), s.document_digest.desc())
        .limit(limit)
    )
    return list(connection.execute(query).mappings())
