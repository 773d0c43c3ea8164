"""A released model on a real cloud: versions 1 and 2 signed into TUF, version 1 in production on ten gateways.

Director documents are the real signed ones, retained on the machine's Mosquitto under a unique topic prefix;
gateway events are stored through the real ingest ``write_batch`` (``tests.deployments.conftest.Fleet``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from cloud.config import PASSPHRASE_ENV, CloudConfig
from cloud.registry import MLModelRegistry
from cloud.releases import director, keystore
from cloud.releases.service import ReleaseService
from cloud.rollouts.engine import StagedRollouts
from cloud.rollouts.plan import RolloutPlan
from cloud.storage import open_database
from shared.messages import EventKind
from tests.deployments.conftest import Fleet
from tests.releases.conftest import PASSPHRASE, clear_retained, onnx_models, released_cloud  # noqa: F401 (fixture)

NAME = "component_failure"
GATEWAYS = [f"gw-ro-{i:02d}" for i in range(10)]
PLAN = RolloutPlan(percentages=(20, 100), stage_deadline=timedelta(minutes=30))


@dataclass
class Cloud:
    config: CloudConfig
    db: sqlite_utils.Database
    rollouts: StagedRollouts
    fleet: Fleet

    def version_of(self, gateway_id: str) -> tuple[str, int]:
        """The version the gateway's latest director document names, and its sequence."""
        document = director.latest_document(self.db, gateway_id)
        assert document is not None
        return document.signed.models[NAME].version, document.signed.sequence

    def commit(self, gateway_id: str, version: str = "2") -> None:
        """What an agent reports for a release that passes probation, under its current document."""
        _, sequence = self.version_of(gateway_id)
        self.fleet.applied(gateway_id, sequence, version, datetime.now(UTC), commit_after=timedelta(seconds=1))

    def reject(self, gateway_id: str, rule: str = "golden_vectors", detail: str = "output differs") -> None:
        _, sequence = self.version_of(gateway_id)
        self.fleet.report(gateway_id, EventKind.REJECT, datetime.now(UTC), "2", sequence, rule=rule, detail=detail)


def released_config(tmp_path: Path, onnx_models: dict[int, bytes]) -> CloudConfig:  # noqa: F811
    """Versions 1 and 2 released, the ten gateways seen, version 1 production and directed to all of them."""
    config = released_cloud(tmp_path, onnx_models, GATEWAYS, NAME)
    db = open_database(config.database_url)
    try:
        MLModelRegistry(db).promote_model_to_production(
            NAME, "1", actor="tests", reason="first model", rollout=ReleaseService(config, PASSPHRASE)
        )
    finally:
        db.close()
    return config


@pytest.fixture
def released(tmp_path: Path, onnx_models: dict[int, bytes], monkeypatch) -> Iterator[CloudConfig]:  # noqa: F811
    config = released_config(tmp_path, onnx_models)
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    yield config
    clear_retained(config, GATEWAYS)


@pytest.fixture
def cloud(released: CloudConfig) -> Iterator[Cloud]:
    db = open_database(released.database_url)
    key = keystore.director_key(released.keys_dir, PASSPHRASE)
    yield Cloud(released, db, StagedRollouts(released, db, PASSPHRASE), Fleet(released, db, key))
    db.close()
