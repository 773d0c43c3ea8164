"""The director: per-gateway desired state, signed and persisted with a strictly increasing sequence.

A gateway accepts a document only if its ``sequence`` is above the last one it accepted, so the
sequence is issued inside one SQLite write transaction and never reused, and it starts above the
sequence a gateway last reported in ``up/status`` (a restored database cannot lock a gateway out).
Target hashes and lengths are copied from the TUF targets metadata, so the two repositories agree.

The fleet's desired state (what a gateway not directed individually should run) is kept beside
the database in ``director/fleet.json``; gateways that appear later are directed to it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import TypeAdapter
from tuf.api.metadata import Targets

from cloud.config import CloudConfig
from cloud.releases.tuf_repo import current_targets, model_target_path, release_target_path, sha256_of
from cloud.storage import iso
from shared.atomic_files import atomic_write
from shared.director import DesiredModel, DirectorDocument, DirectorSigned, TargetRef, format_time, sign_director
from shared.topics import validate_id

DEFAULT_VALIDITY = timedelta(days=30)
_MODELS = TypeAdapter(dict[str, DesiredModel])


class DirectorError(Exception):
    """A director document cannot be built (unknown release, no gateway, bad input)."""


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


def _fleet_path(config: CloudConfig) -> Path:
    return config.data_dir / "director" / "fleet.json"


def fleet_desired(config: CloudConfig) -> dict[str, DesiredModel]:
    path = _fleet_path(config)
    return _MODELS.validate_json(path.read_bytes()) if path.exists() else {}


def set_fleet_desired(config: CloudConfig, updates: dict[str, DesiredModel]) -> dict[str, DesiredModel]:
    """Merge ``updates`` into the fleet's desired state (one entry per model name)."""
    models = {**fleet_desired(config), **updates}
    atomic_write(_fleet_path(config), _MODELS.dump_json(models, exclude_none=True, indent=1))
    return models


# -- documents -----------------------------------------------------------------------------------


def latest_document(db: sqlite_utils.Database, gateway_id: str) -> DirectorDocument | None:
    row = db.execute("SELECT document_json FROM director_documents WHERE gateway_id = ?", [gateway_id]).fetchone()
    return DirectorDocument.model_validate_json(row[0]) if row else None


def known_gateways(db: sqlite_utils.Database) -> list[str]:
    """Gateways the ingest worker has seen (from ``up/status``) and those already directed by name."""
    query = "SELECT gateway_id FROM gateways UNION SELECT gateway_id FROM director_documents ORDER BY gateway_id"
    return [row[0] for row in db.execute(query)]


def gateways_without_document(db: sqlite_utils.Database) -> list[str]:
    query = """SELECT g.gateway_id FROM gateways g
               LEFT JOIN director_documents d ON d.gateway_id = g.gateway_id
               WHERE d.gateway_id IS NULL ORDER BY g.gateway_id"""
    return [row[0] for row in db.execute(query)]


def unpublished_gateways(db: sqlite_utils.Database) -> list[str]:
    query = "SELECT gateway_id FROM director_documents WHERE published_at IS NULL ORDER BY gateway_id"
    return [row[0] for row in db.execute(query)]


def gateways_expiring(db: sqlite_utils.Database, before: datetime) -> list[str]:
    """Gateways whose current document expires before ``before``: they need a fresh one."""
    rows = db.execute("SELECT gateway_id, document_json FROM director_documents ORDER BY gateway_id").fetchall()
    return [
        gateway_id
        for gateway_id, document_json in rows
        if DirectorDocument.model_validate_json(document_json).signed.expires() < before
    ]


def issue_documents(
    config: CloudConfig,
    db: sqlite_utils.Database,
    director_key: Ed25519PrivateKey,
    gateway_ids: list[str],
    updates: dict[str, DesiredModel] | None = None,
    validity: timedelta = DEFAULT_VALIDITY,
    now: datetime | None = None,
) -> list[DirectorDocument]:
    """Sign and store a new document per gateway: its current models (else the fleet's) with ``updates``.

    Each document is stored unpublished (``published_at`` NULL); the publisher sends it and marks it.
    An empty ``updates`` re-issues the same desired state with a fresh sequence and expiry.
    """
    for gateway_id in gateway_ids:
        validate_id(gateway_id, "gateway id")
    now = now or datetime.now(UTC)
    fleet = fleet_desired(config)
    documents = []
    for gateway_id in gateway_ids:
        with db.conn:
            db.execute("BEGIN IMMEDIATE")  # read the last sequence and write the next one atomically
            previous = latest_document(db, gateway_id)
            models = dict(previous.signed.models) if previous else dict(fleet)
            models.update(updates or {})
            signed = DirectorSigned(
                gateway_id=gateway_id,
                sequence=_next_sequence(db, gateway_id, previous),
                issued_at=format_time(now),
                expires_at=format_time(now + validity),
                models=models,
            )
            document = sign_director(signed, [director_key])
            db.execute(
                """INSERT INTO director_documents (gateway_id, sequence, document_json, published_at)
                   VALUES (?, ?, ?, NULL)
                   ON CONFLICT(gateway_id) DO UPDATE SET
                     sequence = excluded.sequence, document_json = excluded.document_json, published_at = NULL""",
                [gateway_id, signed.sequence, document.to_json().decode()],
            )
        documents.append(document)
    return documents


def _next_sequence(db: sqlite_utils.Database, gateway_id: str, previous: DirectorDocument | None) -> int:
    row = db.execute("SELECT director_sequence FROM gateways WHERE gateway_id = ?", [gateway_id]).fetchone()
    reported = row[0] if row and row[0] is not None else 0
    return max(previous.signed.sequence if previous else 0, reported) + 1


def mark_published(db: sqlite_utils.Database, gateway_id: str, sequence: int, when: datetime | None = None) -> bool:
    """Record that ``sequence`` reached the broker; a newer document issued meanwhile stays pending."""
    with db.conn:
        cursor = db.execute(
            "UPDATE director_documents SET published_at = ? WHERE gateway_id = ? AND sequence = ?",
            [iso(when or datetime.now(UTC)), gateway_id, sequence],
        )
    return cursor.rowcount == 1


def document_summary(document: DirectorDocument) -> str:
    models = ", ".join(f"{name}={model.version}" for name, model in sorted(document.signed.models.items()))
    return f"{document.signed.gateway_id} #{document.signed.sequence} [{models}]"
