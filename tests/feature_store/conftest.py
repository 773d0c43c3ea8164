"""A real SQLite cloud database with hand-made feature rows and outcomes whose labels are known by construction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from cloud.feature_store import FeatureStore
from cloud.storage import iso, open_database
from shared.features import FEATURE_NAMES

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
HORIZON = timedelta(days=3)
#: every row is fully observed by then unless a test says otherwise
AS_OF = T0 + 30 * DAY


def vector(value: float) -> dict[str, float]:
    """A full v1 feature vector whose first feature is ``value`` (the rest count up from it)."""
    return {name: value + i for i, name in enumerate(FEATURE_NAMES)}


def add_outcome(
    db: sqlite_utils.Database, device_id: str, observed_at: datetime, component: str | None, result: str
) -> None:
    db["outcomes"].insert(
        {
            "outcome_id": f"o-{device_id}-{iso(observed_at)}-{result}",
            "device_id": device_id,
            "source": "technician",
            "observed_at": iso(observed_at),
            "component": component,
            "result": result,
            "received_at": iso(observed_at + timedelta(hours=1)),
        }
    )


def add_device(db: sqlite_utils.Database, device_id: str, device_type: str) -> None:
    db["devices"].upsert({"device_id": device_id, "gateway_id": "gw-001", "device_type": device_type}, pk="device_id")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_database(tmp_path / "cloud" / "iotsphere.db")
    yield database
    database.conn.close()


@pytest.fixture
def store(db: sqlite_utils.Database) -> FeatureStore:
    return FeatureStore(db)
