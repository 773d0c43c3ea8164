"""Fixtures: a registry over a real SQLite file, and a rollout that records what it was asked to publish."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlite_utils

from cloud.registry import MLModelRegistry
from cloud.releases.director import Issued
from cloud.storage import open_database
from tests.postgres_run import database_at
from tests.rows import update_rows


@dataclass
class RecordingRollout:
    """Stands in for the director in unit tests (the real one is tested through HTTP and Mosquitto)."""

    published: list[tuple[str, str, str]] = field(default_factory=list)
    refuse: Exception | None = None

    def check(self, model_name: str, version: str) -> None:
        if self.refuse:
            raise self.refuse

    def direct_production(self, db: sqlite_utils.Database, model_name: str, version: str, device_type: str) -> Issued:
        self.published.append((model_name, version, device_type))
        return Issued([], [])

    def deliver(self, db: sqlite_utils.Database) -> str | None:
        return None


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_database(database_at(tmp_path / "iotsphere.db"))
    yield database
    database.close()


@pytest.fixture
def registry(db: sqlite_utils.Database) -> MLModelRegistry:
    return MLModelRegistry(db)


@pytest.fixture
def rollout() -> RecordingRollout:
    return RecordingRollout()


def add_version(
    registry: MLModelRegistry,
    version: str,
    released: bool = True,
    device_types: list[str] | None = None,
    name: str = "component_failure",
) -> None:
    """A trained version as training registers it; ``released`` adds its TUF targets as a release does."""
    registry.register_model(
        name,
        version,
        f"/artifacts/{name}/{version}",
        {
            "prediction_type": "component_failure",
            "feature_set_version": "fs1",
            "device_types": device_types or [],
            "metrics": {"mean_roc_auc": 0.9},
            "lineage": {"dataset_id": f"ds-{version}", "training_parameters": {"max_depth": 3}, "code_version": "0.1"},
            "model_sha256": f"{version:0>64}",
        },
    )
    if released:
        update_rows(
            registry.db,
            "models",
            {"model_name": name, "model_version": version},
            {
                "status": "released",
                "release_target": f"models/{name}/{version}/release.json",
                "model_target": f"models/{name}/{version}/model.onnx",
                "targets_version": int(version) + 1,
            },
        )
