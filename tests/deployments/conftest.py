"""A fleet's record as the cloud keeps it: director documents issued by the director, events stored by ingest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.config import CloudConfig
from cloud.ingest.decode import Accepted
from cloud.ingest.store import write_batch
from cloud.releases import director
from cloud.storage import open_database
from shared.director import DesiredModel, document_digest
from shared.messages import EventKind, GatewayEvent
from shared.signing import generate_private_key
from shared.topics import Up

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MODEL = "component_failure"


def desired(model_name: str, version: str) -> DesiredModel:
    """A director entry for a release (hashes made up: only the version matters to deployment state)."""
    digest = hashlib.sha256(f"{model_name}/{version}".encode()).hexdigest()
    return DesiredModel(
        version=version,
        release_target=f"models/{model_name}/{version}/release.json",
        release_sha256=digest,
        release_length=100,
        model_target=f"models/{model_name}/{version}/model.onnx",
        model_sha256=digest,
        model_length=1000,
    )


@dataclass
class Fleet:
    config: CloudConfig
    db: sqlite_utils.Database
    key: Ed25519PrivateKey

    def direct(self, gateway_id: str, at: datetime, **versions: str) -> int:
        """Issue ``gateway_id`` a document naming these model versions (others kept) at ``at``; its sequence."""
        updates = {name: desired(name, version) for name, version in versions.items()}
        (document,) = director.issue_documents(self.config, self.db, self.key, [gateway_id], updates, now=at).documents
        return document.signed.sequence

    def digest(self, gateway_id: str) -> str:
        """The digest of the gateway's latest document, as the gateway computes it of what it received."""
        return document_digest(director.latest_document(self.db, gateway_id).to_json())

    def report(
        self,
        gateway_id: str,
        kind: EventKind,
        at: datetime,
        version: str | None = None,
        sequence: int | None = None,
        model_name: str | None = MODEL,
        rule: str | None = None,
        detail: str = "",
        digest: str | None = None,
    ) -> None:
        """An ``up/events`` message stored the way the ingest worker stores it (``digest``: none, as older agents)."""
        event = GatewayEvent(
            gateway_id=gateway_id,
            kind=kind,
            model_name=model_name,
            model_version=version,
            director_sequence=sequence,
            document_digest=digest,
            rule=rule,
            detail=detail,
            sent_at=at,
        )
        write_batch(self.db, [Accepted(Up.EVENTS, event)], [], at)

    def applied(self, gateway_id: str, sequence: int, version: str, at: datetime, commit_after: timedelta) -> None:
        """What an agent reports for a new release that passes probation."""
        self.report(gateway_id, EventKind.INSTALL, at, version, sequence)
        self.report(gateway_id, EventKind.ACTIVATE, at + timedelta(milliseconds=5), version, sequence)
        self.report(gateway_id, EventKind.COMMIT, at + commit_after, version)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    config = CloudConfig(data_dir=tmp_path / "cloud")
    db = open_database(config.database_url)
    yield Fleet(config, db, generate_private_key())
    db.close()
