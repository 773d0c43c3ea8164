"""The director: per-gateway desired state, signed and persisted with a strictly increasing sequence.

A gateway accepts a document only if its ``sequence`` is above the last one it accepted, so the
sequence is issued inside one SQLite write transaction and never reused, and it starts above the
sequence a gateway last reported in ``up/status`` (a restored database cannot lock a gateway out).
Target hashes and lengths are copied from the TUF targets metadata, so the two repositories agree.

Issuing is per gateway: each gateway's document is signed and stored in its own savepoint, so one that
cannot be directed (a gateway whose sequence reached ``MAX_SAFE_INT``, a row that cannot be written) is
recorded in ``director_failures`` with its reason and time, and the others still get theirs; the director
publisher retries the recorded ones. Documents are issued inside the caller's transaction when there is
one, so a promotion and the documents it issues commit or roll back together.

The fleet's desired state (what a gateway not directed individually should run) is kept in the
``director_fleet`` table, in the same transactions; gateways that appear later are directed to it.
Their rows are the ``director`` owner's (``cloud.data.director``); the gateways' are the ``fleet``'s.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import TypeAdapter
from sqlalchemy.exc import DBAPIError, OperationalError
from tuf.api.metadata import Targets

from cloud.config import CloudConfig
from cloud.data import director as stored
from cloud.data import fleet as stored_fleet
from cloud.data.connections import connection_of, in_transaction, write_transaction
from cloud.errors import Refused, TemporarilyUnavailable
from cloud.releases import issued
from cloud.releases.tuf_repo import current_targets, model_target_path, release_target_path, sha256_of
from cloud.storage import from_iso, iso
from shared.director import DesiredModel, DirectorDocument, DirectorSigned, TargetRef, format_time, sign_director
from shared.limits import MAX_SAFE_INT
from shared.topics import validate_id

DEFAULT_VALIDITY = timedelta(days=30)
#: the publisher retries a gateway that could not be directed after this, doubling per attempt up to a cap
RETRY_AFTER = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
_MODELS = TypeAdapter(dict[str, DesiredModel])
_REASON_CHARS = 1000


class DirectorError(Refused):
    """A director document cannot be built (unknown release, no gateway, bad input)."""


class DirectingFailed(TemporarilyUnavailable, RuntimeError):
    """Issuing failed as a whole (the database locked, full or failing; the transaction lost): nothing was issued."""


def target_ref(targets: Targets, model_name: str, version: str) -> TargetRef:
    """The release as TUF lists it; refuse a version that is not (or no longer) a TUF target."""
    release_path = release_target_path(model_name, version)
    model_path = model_target_path(model_name, version)
    release = targets.targets.get(release_path)
    model = targets.targets.get(model_path)
    if release is None or model is None:
        raise DirectorError(f"{model_name} version {version} is not published in the TUF repository")
    return TargetRef(
        version=version,
        release_target=release_path,
        release_sha256=sha256_of(release),
        release_length=release.length,
        model_target=model_path,
        model_sha256=sha256_of(model),
        model_length=model.length,
    )


def desired_model(config: CloudConfig, model_name: str, version: str) -> DesiredModel:
    """A champion-only desired model for a published release (experiments add a challenger to it)."""
    return DesiredModel(**target_ref(current_targets(config), model_name, version).model_dump())


# -- fleet default -------------------------------------------------------------------------------


def fleet_desired(db: sqlite_utils.Database) -> dict[str, DesiredModel]:
    stored_desired = stored.fleet_desired(connection_of(db))
    return {name: DesiredModel.model_validate_json(desired) for name, desired in stored_desired.items()}


def set_fleet_desired(db: sqlite_utils.Database, updates: dict[str, DesiredModel]) -> dict[str, DesiredModel]:
    """Merge ``updates`` into the fleet's desired state (one entry per model name), in the caller's transaction
    if one is open."""
    with write_transaction(db) as connection:
        stored.put_fleet_desired(
            connection, {name: model.model_dump_json(exclude_none=True) for name, model in updates.items()}
        )
    return fleet_desired(db)


# -- documents -----------------------------------------------------------------------------------


def latest_document(db: sqlite_utils.Database, gateway_id: str) -> DirectorDocument | None:
    document = stored.document_json(connection_of(db), gateway_id)
    return DirectorDocument.model_validate_json(document) if document is not None else None


def known_gateways(db: sqlite_utils.Database) -> list[str]:
    """Gateways the ingest worker has seen (from ``up/status``) and those already directed by name."""
    connection = connection_of(db)
    return sorted({*stored_fleet.gateway_ids(connection), *stored.directed_gateways(connection)})


def directed_gateways(db: sqlite_utils.Database) -> list[str]:
    """Gateways that have a document, by id."""
    return stored.directed_gateways(connection_of(db))


def gateways_without_document(db: sqlite_utils.Database) -> list[str]:
    connection = connection_of(db)
    directed = set(stored.directed_gateways(connection))
    return [gateway_id for gateway_id in stored_fleet.gateway_ids(connection) if gateway_id not in directed]


def unpublished_gateways(db: sqlite_utils.Database) -> list[str]:
    return stored.unpublished_gateways(connection_of(db))


def gateways_expiring(db: sqlite_utils.Database, before: datetime) -> list[str]:
    """Gateways whose current document expires before ``before``, or cannot be read: they need a fresh one."""
    rows = stored.every_document(connection_of(db))
    return [row["gateway_id"] for row in rows if _expires(row["document_json"]) < before]


def _expires(document_json: str) -> datetime:
    try:
        return DirectorDocument.model_validate_json(document_json).signed.expires()
    except ValueError:  # a row that does not parse is renewed, and fails as that gateway's own failure
        return datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class IssueFailure:
    """A gateway that got no new document: why, and when (kept in ``director_failures`` until one is issued)."""

    gateway_id: str
    reason: str
    failed_at: datetime
    #: how many times in a row issuing to this gateway failed
    attempts: int = 1


@dataclass(frozen=True)
class Issued:
    """What one issuing pass did: a document per gateway directed, a failure per gateway that was not."""

    documents: list[DirectorDocument]
    failures: list[IssueFailure]


def issue_documents(
    config: CloudConfig,
    db: sqlite_utils.Database,
    director_key: Ed25519PrivateKey,
    gateway_ids: list[str],
    updates: dict[str, DesiredModel] | None = None,
    validity: timedelta = DEFAULT_VALIDITY,
    now: datetime | None = None,
) -> Issued:
    """Sign and store a new document per gateway: its current models (else the fleet's) with ``updates``.

    Each document is stored unpublished (``published_at`` NULL); the publisher sends it and marks it.
    An empty ``updates`` re-issues the same desired state with a fresh sequence and expiry, plus whatever an
    earlier failed attempt still owes the gateway. A gateway that cannot be directed is recorded as a failure
    (with the updates it missed, for the publisher to retry) and the others are directed all the same; only a
    database that fails as a whole (locked, full, a transaction rolled back) stops the pass: ``DirectingFailed``.
    Runs in the caller's transaction if one is open, else in one ``BEGIN IMMEDIATE`` transaction of its own
    (the last sequence is read and the next one written atomically).
    """
    for gateway_id in gateway_ids:
        validate_id(gateway_id, "gateway id")
    now = now or datetime.now(UTC)
    documents: list[DirectorDocument] = []
    failures: list[IssueFailure] = []
    with write_transaction(db):
        fleet = fleet_desired(db)
        for gateway_id in gateway_ids:
            try:
                with write_transaction(db):  # a savepoint: a failed gateway leaves nothing half-written
                    documents.append(_issue_one(db, director_key, gateway_id, fleet, updates or {}, validity, now))
            # the database itself (locked, full, I/O; through the owner or the savepoint): not this gateway's
            except (OperationalError, sqlite3.OperationalError) as exc:
                raise _as_a_whole(exc) from exc
            except Exception as exc:  # any other failure is this gateway's alone
                if not in_transaction(db):  # unless it ended the transaction (a trigger's RAISE(ROLLBACK))
                    raise _as_a_whole(exc) from exc
                failures.append(_record_failure(db, gateway_id, updates or {}, _reason(exc), now))
    return Issued(documents, failures)


def _issue_one(
    db: sqlite_utils.Database,
    director_key: Ed25519PrivateKey,
    gateway_id: str,
    fleet: dict[str, DesiredModel],
    updates: dict[str, DesiredModel],
    validity: timedelta,
    now: datetime,
) -> DirectorDocument:
    previous = latest_document(db, gateway_id)
    models = dict(previous.signed.models) if previous else dict(fleet)
    models.update(_owed(db, gateway_id))
    models.update(updates)
    signed = DirectorSigned(
        gateway_id=gateway_id,
        sequence=_next_sequence(db, gateway_id, previous),
        issued_at=format_time(now),
        expires_at=format_time(now + validity),
        models=models,
    )
    document = sign_director(signed, [director_key])
    connection = connection_of(db)
    stored.store_document(connection, gateway_id, signed.sequence, document.to_json().decode())
    issued.record(db, document)  # events are matched to documents by this digest (cloud.deployments)
    stored.clear_failure(connection, gateway_id)
    return document


def _next_sequence(db: sqlite_utils.Database, gateway_id: str, previous: DirectorDocument | None) -> int:
    """One above both the last document's sequence and the one the gateway reported; refuse past the bound.

    A gateway that reported (or was sent) ``MAX_SAFE_INT`` has no next sequence: it cannot be directed until it
    is re-provisioned, and that is its failure alone.
    """
    reported = stored_fleet.reported_director_sequence(connection_of(db), gateway_id)
    reported = 0 if reported is None else reported
    if type(reported) is not int or not 0 <= reported <= MAX_SAFE_INT:
        raise DirectorError(
            f"{gateway_id} reported director sequence {reported!r}, outside 0..{MAX_SAFE_INT}: it cannot be directed"
        )
    last = max(previous.signed.sequence if previous else 0, reported)
    if last >= MAX_SAFE_INT:
        raise DirectorError(
            f"{gateway_id} is at director sequence {last}, the largest there is ({MAX_SAFE_INT}): it cannot be "
            "directed until it is re-provisioned"
        )
    return last + 1


def _as_a_whole(exc: Exception) -> DirectingFailed:
    return DirectingFailed(f"issuing director documents failed, nothing was issued: {_described(exc)}")


def _reason(exc: Exception) -> str:
    return (str(exc) if isinstance(exc, DirectorError) else _described(exc))[:_REASON_CHARS]


def _described(exc: Exception) -> str:
    """The error's type and message; for the database's, the driver's (not the statement and its parameters)."""
    error = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return f"{type(error).__name__}: {error}"


# -- failures ------------------------------------------------------------------------------------


def _owed(db: sqlite_utils.Database, gateway_id: str) -> dict[str, DesiredModel]:
    """The updates a failed attempt did not deliver to the gateway."""
    owed = stored.owed_json(connection_of(db), gateway_id)
    return _MODELS.validate_json(owed) if owed is not None else {}


def _record_failure(
    db: sqlite_utils.Database, gateway_id: str, updates: dict[str, DesiredModel], reason: str, now: datetime
) -> IssueFailure:
    owed = _MODELS.dump_json({**_owed(db, gateway_id), **updates}, exclude_none=True).decode()
    attempts = stored.record_failure(connection_of(db), gateway_id, owed, reason, iso(now))
    return IssueFailure(gateway_id, reason, now, attempts)


def failures(db: sqlite_utils.Database) -> list[IssueFailure]:
    """Gateways the director could not give their latest desired state, oldest failure first."""
    return [
        IssueFailure(row["gateway_id"], row["reason"], from_iso(row["failed_at"]), row["attempts"])
        for row in stored.failures(connection_of(db))
    ]


def failures_due(db: sqlite_utils.Database, now: datetime) -> list[str]:
    """Gateways to retry now: ``RETRY_AFTER`` after a failure, doubling per attempt up to ``RETRY_CAP``."""
    return [
        failure.gateway_id
        for failure in failures(db)
        if failure.failed_at + min(RETRY_AFTER * 2 ** min(failure.attempts - 1, 20), RETRY_CAP) <= now
    ]


def mark_published(db: sqlite_utils.Database, gateway_id: str, sequence: int, when: datetime | None = None) -> bool:
    """Record that ``sequence`` reached the broker; a newer document issued meanwhile stays pending."""
    with write_transaction(db) as connection:
        return stored.mark_published(connection, gateway_id, sequence, iso(when or datetime.now(UTC)))


def resend(db: sqlite_utils.Database, gateway_ids: Iterable[str]) -> None:
    """Have the publisher send these gateways' latest documents again (in the caller's transaction).

    For a gateway that was sent a document the cloud never issued (``cloud.security_events``): whoever published it
    retained on its ``down/desired`` replaced the cloud's document there, so a gateway reconnecting would get only
    the forgery. The gateway ignores the resent document if it already applied it (same bytes).
    """
    stored.mark_unpublished(connection_of(db), set(gateway_ids))


def document_summary(document: DirectorDocument) -> str:
    models = ", ".join(f"{name}={model.version}" for name, model in sorted(document.signed.models.items()))
    return f"{document.signed.gateway_id} #{document.signed.sequence} [{models}]"
