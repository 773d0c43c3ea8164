"""Deployments: director documents issued to gateways, the fleet's desired state, gateways not yet directed."""

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
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)

from cloud.data.fleet import before_cursor
from cloud.data.metadata import BIGINT, metadata, upsert

director_documents = Table(
    "director_documents",
    metadata,
    Column("gateway_id", Text, primary_key=True, nullable=True),
    Column("sequence", BIGINT),
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
    Column("sequence", BIGINT, nullable=False),
    Column("issued_at", Text, nullable=False),
    Index("director_issued_gateway", "gateway_id", "sequence"),
)


# -- the fleet's desired state -------------------------------------------------------------------


def fleet_desired(connection: Connection) -> dict[str, str]:
    """Each model's desired state (stored JSON) for gateways not directed individually, by model name."""
    query = select(director_fleet.c.model_name, director_fleet.c.desired_json).order_by(director_fleet.c.model_name)
    return {name: desired for name, desired in connection.execute(query)}


def put_fleet_desired(connection: Connection, desired: Mapping[str, str]) -> None:
    """Set these models' desired state (JSON by model name); the other models' stays."""
    if not desired:
        return
    statement = upsert(connection, director_fleet)
    statement = statement.on_conflict_do_update(
        index_elements=[director_fleet.c.model_name], set_={"desired_json": statement.excluded.desired_json}
    )
    connection.execute(statement, [{"model_name": name, "desired_json": json} for name, json in desired.items()])


# -- documents -----------------------------------------------------------------------------------


def document_json(connection: Connection, gateway_id: str) -> str | None:
    """The gateway's latest document as stored, if it was ever directed."""
    query = select(director_documents.c.document_json).where(director_documents.c.gateway_id == gateway_id)
    return connection.execute(query).scalar()


def directed_gateways(connection: Connection) -> list[str]:
    """Every gateway that has a document, by id."""
    query = select(director_documents.c.gateway_id).order_by(director_documents.c.gateway_id)
    return list(connection.execute(query).scalars())


def unpublished_gateways(connection: Connection) -> list[str]:
    """Gateways whose latest document the publisher has not sent yet, by id."""
    query = (
        select(director_documents.c.gateway_id)
        .where(director_documents.c.published_at.is_(None))
        .order_by(director_documents.c.gateway_id)
    )
    return list(connection.execute(query).scalars())


def document_counts(connection: Connection) -> dict[str, int]:
    """How many gateways' latest documents are ``pending`` (not yet published) and ``published``: one counting query."""
    d = director_documents.c
    every, published = connection.execute(select(func.count(), func.count(d.published_at))).one()
    return {"pending": every - published, "published": published}


def every_document(connection: Connection) -> list[RowMapping]:
    """``gateway_id`` and ``document_json`` of every gateway's latest document, by gateway."""
    query = select(director_documents.c.gateway_id, director_documents.c.document_json).order_by(
        director_documents.c.gateway_id
    )
    return list(connection.execute(query).mappings())


def store_document(connection: Connection, gateway_id: str, sequence: int, document: str) -> None:
    """Make ``document`` the gateway's latest, not yet published (it replaces the one before)."""
    statement = upsert(connection, director_documents).values(
        gateway_id=gateway_id, sequence=sequence, document_json=document, published_at=None
    )
    statement = statement.on_conflict_do_update(
        index_elements=[director_documents.c.gateway_id],
        set_={
            "sequence": statement.excluded.sequence,
            "document_json": statement.excluded.document_json,
            "published_at": None,
        },
    )
    connection.execute(statement)


def mark_published(connection: Connection, gateway_id: str, sequence: int, at: str) -> bool:
    """Record that the document ``sequence`` was published at ``at``; False if the gateway's latest is another."""
    statement = (
        update(director_documents)
        .where(director_documents.c.gateway_id == gateway_id, director_documents.c.sequence == sequence)
        .values(published_at=at)
    )
    return connection.execute(statement).rowcount == 1


def mark_unpublished(connection: Connection, gateway_ids: Collection[str]) -> None:
    """Have the publisher send these gateways' latest documents again."""
    if gateway_ids:
        statement = (
            update(director_documents)
            .where(director_documents.c.gateway_id.in_(sorted(gateway_ids)))
            .values(published_at=None)
        )
        connection.execute(statement)


def record_issued(connection: Connection, digest: str, gateway_id: str, sequence: int, issued_at: str) -> None:
    """Keep the digest of a document issued to ``gateway_id`` (kept once: the same bytes again change nothing)."""
    statement = upsert(connection, director_issued).values(
        document_digest=digest, gateway_id=gateway_id, sequence=sequence, issued_at=issued_at
    )
    connection.execute(statement.on_conflict_do_nothing(index_elements=[director_issued.c.document_digest]))


# -- failures ------------------------------------------------------------------------------------


def owed_json(connection: Connection, gateway_id: str) -> str | None:
    """The updates (stored JSON) a failed attempt did not deliver to the gateway, if one failed."""
    query = select(director_failures.c.updates_json).where(director_failures.c.gateway_id == gateway_id)
    return connection.execute(query).scalar()


def record_failure(connection: Connection, gateway_id: str, updates_json: str, reason: str, at: str) -> int:
    """Record that directing the gateway failed at ``at`` owing ``updates_json``; how many times in a row it has."""
    statement = upsert(connection, director_failures).values(
        gateway_id=gateway_id, updates_json=updates_json, reason=reason, first_failed_at=at, failed_at=at, attempts=1
    )
    statement = statement.on_conflict_do_update(
        index_elements=[director_failures.c.gateway_id],
        set_={
            "updates_json": statement.excluded.updates_json,
            "reason": statement.excluded.reason,
            "failed_at": statement.excluded.failed_at,
            "attempts": director_failures.c.attempts + 1,
        },
    )
    return connection.execute(statement.returning(director_failures.c.attempts)).scalar_one()


def clear_failure(connection: Connection, gateway_id: str) -> None:
    """The gateway got its document: nothing is owed any more."""
    connection.execute(delete(director_failures).where(director_failures.c.gateway_id == gateway_id))


def failures(connection: Connection) -> list[RowMapping]:
    """``gateway_id``, ``reason``, ``failed_at`` and ``attempts`` of each gateway not directed, oldest failure first."""
    query = select(
        director_failures.c.gateway_id,
        director_failures.c.reason,
        director_failures.c.failed_at,
        director_failures.c.attempts,
    ).order_by(director_failures.c.first_failed_at, director_failures.c.gateway_id)
    return list(connection.execute(query).mappings())


# -- deployments ---------------------------------------------------------------------------------

# One row per (gateway, model) of each gateway's latest document, with the events that concern it: the latest
# switch of the model (an activation up to the document's sequence, or a rollback), the activation before that
# switch, a commit of the named version after it, and the install and reject of this very document. Only events
# about documents the cloud issued to the gateway count (``events``, inlined into each subquery), with the sequence
# it issued them under; those naming no digest count unless they are rejects for one of ``:unauthenticated`` rules.
# The digest is looked up by its key alone and the gateway compared after: joined on both, the planners walk every
# document issued to the gateway (its index) for each event.
# Each correlated subquery is a range of ``idx_gateway_events_gateway_kind_model`` (one gateway's events of one
# kind about one model, by time), so its cost is that gateway's history of the kind, whatever the fleet's size.
# The switch, activation and reject are then read by key (``_EVENT``): on PostgreSQL a LATERAL lookup, as a join
# its row estimates from the documents' JSON are far off and it scans every event to hash them. The documents' JSON
# is read with each dialect's own functions (``_JSON``).
_DEPLOYMENTS = """
WITH events AS NOT MATERIALIZED (
  SELECT e.msg_id, e.gateway_id, e.kind, e.model_name, e.model_version, e.sent_at,
         coalesce(i.sequence, e.director_sequence) AS director_sequence
  FROM gateway_events e
  LEFT JOIN director_issued i ON i.document_digest = e.document_digest
  WHERE CASE WHEN e.document_digest IS NULL THEN e.kind != 'reject' OR coalesce(e.rule, '') NOT IN :unauthenticated
             ELSE i.gateway_id = e.gateway_id END
),
named AS (
  SELECT d.gateway_id, d.sequence, d.published_at, {issued_at} AS issued_at, m.key AS model_name,
         {version} AS version
  FROM director_documents d, {models} AS m
  WHERE (CAST(:gateway AS TEXT) IS NULL OR d.gateway_id = :gateway){of_gateways}
    AND (CAST(:model AS TEXT) IS NULL OR m.key = :model)
),
switched AS (
  SELECT n.*,
    (SELECT e.msg_id FROM events e WHERE e.gateway_id = n.gateway_id AND e.kind IN ('activate', 'rollback')
       AND e.model_name = n.model_name AND (e.kind = 'rollback' OR e.director_sequence <= n.sequence)
       ORDER BY e.sent_at DESC LIMIT 1) AS switch_id,
    COALESCE(
      (SELECT max(e.sent_at) FROM events e WHERE e.gateway_id = n.gateway_id AND e.kind = 'download'
         AND e.model_name = n.model_name AND e.director_sequence = n.sequence),
      (SELECT max(e.sent_at) FROM events e WHERE e.gateway_id = n.gateway_id AND e.kind = 'install'
         AND e.model_name = n.model_name AND e.director_sequence = n.sequence)) AS downloading_at,
    (SELECT e.msg_id FROM events e WHERE e.gateway_id = n.gateway_id AND e.kind = 'reject'
       AND e.director_sequence = n.sequence ORDER BY e.sent_at DESC LIMIT 1) AS reject_id
  FROM named n
),
concluded AS (
  SELECT w.*, s.kind AS switch_kind, s.model_version AS switch_version, s.sent_at AS switch_at,
    s.detail AS switch_detail,
    (SELECT e.msg_id FROM events e WHERE e.gateway_id = w.gateway_id AND e.kind = 'activate'
       AND e.model_name = w.model_name AND e.director_sequence <= w.sequence AND e.sent_at <= s.sent_at
       ORDER BY e.sent_at DESC LIMIT 1) AS activation_id,
    (SELECT min(e.sent_at) FROM events e WHERE e.gateway_id = w.gateway_id AND e.kind = 'commit'
       AND e.model_name = w.model_name AND e.model_version = w.version AND e.sent_at >= s.sent_at) AS committed_at
  FROM switched w {switch_event}
)
SELECT c.gateway_id, c.model_name, c.version, c.sequence, c.issued_at, c.published_at, c.downloading_at,
       c.switch_kind, c.switch_version, c.switch_at, c.switch_detail, c.committed_at,
       a.model_version AS activated_version, a.sent_at AS activated_at,
       r.sent_at AS rejected_at, r.rule, r.detail AS reject_detail, g.director_sequence AS gateway_sequence
FROM concluded c {activation_event} {reject_event}
LEFT JOIN gateways g ON g.gateway_id = c.gateway_id
ORDER BY c.gateway_id, c.model_name
"""
#: the stored event ``key`` names, as ``alias``: a plain join on SQLite (which has no LATERAL; it looks each up by
#: key anyway), a LATERAL lookup on PostgreSQL (``LIMIT 1`` keeps the planner from flattening it back into a join)
_EVENT = {
    "sqlite": "LEFT JOIN gateway_events {alias} ON {alias}.msg_id = {key}",
    "postgresql": "LEFT JOIN LATERAL (SELECT * FROM gateway_events x WHERE x.msg_id = {key} LIMIT 1) {alias} ON true",
}
_JSON = {
    "sqlite": {
        "issued_at": "d.document_json ->> '$.signed.issued_at'",
        "version": "m.value ->> '$.version'",
        "models": "json_each(d.document_json, '$.signed.models')",
    },
    "postgresql": {
        "issued_at": "d.document_json::jsonb #>> '{signed,issued_at}'",
        "version": "m.value ->> 'version'",
        "models": "jsonb_each(d.document_json::jsonb #> '{signed,models}')",
    },
}


#: gateway ids bound in one statement: SQLite takes at most 32,766 parameters, a stage may name the whole fleet
_IDS_PER_STATEMENT = 10_000


def deployment_rows(
    connection: Connection,
    unauthenticated: Collection[str],
    gateway_id: str | None,
    model_name: str | None,
    gateway_ids: Collection[str] | None = None,
) -> list[RowMapping]:
    """Each (gateway, model) the gateways' latest documents name, with the events about it (``cloud.deployments``
    turns them into states), by gateway then model; of one gateway or model, or all; of ``gateway_ids`` only if given
    (one statement for a page of gateways, not one each; one per _IDS_PER_STATEMENT for a rollout stage's).

    Deployments are the director's, so this one statement also reads the fleet's ``gateway_events`` and
    ``gateways``. ``unauthenticated``: the reject rules an event naming no digest does not count for.
    """
    of_gateways = "" if gateway_ids is None else " AND d.gateway_id IN :gateways"
    event = _EVENT[connection.dialect.name]
    statement = text(
        _DEPLOYMENTS.format(
            of_gateways=of_gateways,
            switch_event=event.format(alias="s", key="w.switch_id"),
            activation_event=event.format(alias="a", key="c.activation_id"),
            reject_event=event.format(alias="r", key="c.reject_id"),
            **_JSON[connection.dialect.name],
        )
    )
    statement = statement.bindparams(bindparam("unauthenticated", expanding=True, type_=Text))
    parameters = {"unauthenticated": list(unauthenticated), "gateway": gateway_id, "model": model_name}
    if gateway_ids is None:
        chunks: list[dict[str, Any]] = [parameters]
    else:
        statement = statement.bindparams(bindparam("gateways", expanding=True, type_=Text))
        ids = sorted(gateway_ids)  # in chunks of ascending ids, so the rows stay in gateway order
        steps = range(0, len(ids), _IDS_PER_STATEMENT)
        chunks = [parameters | {"gateways": ids[start : start + _IDS_PER_STATEMENT]} for start in steps]
    jit = _jit_off(connection)
    rows = [row for chunk in chunks for row in connection.execute(statement, chunk).mappings()]
    if jit is not None:
        connection.execute(text("SELECT set_config('jit', :jit, false)"), {"jit": jit})
    return rows


def _jit_off(connection: Connection) -> str | None:
    """Turn PostgreSQL's JIT compilation off for the session, returning its setting (None on SQLite).

    The documents' JSON is estimated at 100 models each, so even a page's plan looks costly enough to compile: that
    took 2.8 s for lookups that run in 7 ms. Put back after the statement; if it fails, the transaction's rollback
    puts it back, or in autocommit the connection keeps JIT off, which costs nothing but speed.
    """
    if connection.dialect.name != "postgresql":
        return None
    return connection.execute(text("SELECT current_setting('jit'), set_config('jit', 'off', false)")).scalar_one()


# -- a gateway's timeline (the Gateway page) -----------------------------------------------------------------------


def issued_before(
    connection: Connection, gateway_id: str, cursor: tuple[str, str | None] | None, limit: int
) -> list[RowMapping]:
    """The documents issued to the gateway before ``cursor`` (``issued_at``, ``document_digest``), newest first, at
    most ``limit``: ``document_digest``, ``sequence`` and ``issued_at``."""
    i = director_issued.c
    query = (
        select(i.document_digest, i.sequence, i.issued_at)
        .where(i.gateway_id == gateway_id, before_cursor(i.issued_at, i.document_digest, cursor))
        .order_by(i.issued_at.desc(), i.document_digest.desc())
        .limit(limit)
    )
    return list(connection.execute(query).mappings())
