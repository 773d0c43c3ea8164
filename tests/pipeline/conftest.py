"""A real cloud database holding a simulated fleet the way ingest would have stored it.

Feature rows (packed float32, as ingest writes them), the heaters' ground-truth failures as technician outcomes
received an hour after they happened, and, for ``usage_pattern``, one champion prediction per feature row with the
sensor outcome measuring the litres drawn in the next 24 hours. Built once per session and copied per test (on
PostgreSQL: a schema of its own whose rows each test's schema copies, ``tests.postgres_run``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlite_utils

from cloud.config import CloudConfig
from cloud.ingest.feature_codec import encode
from cloud.storage import iso, open_database
from firmware_sim.calibration import ACCELERATED
from firmware_sim.history import History, generate_history
from tests import postgres_run
from tests.rows import insert_rows

GATEWAY = "gw-pipe-1"
#: the tables ``store_history`` fills
FLEET_TABLES = ("devices", "features", "outcomes", "predictions")


def _time(value: np.datetime64) -> datetime:
    return value.astype("datetime64[us]").astype(datetime).replace(tzinfo=UTC)


def store_history(db: sqlite_utils.Database, history: History) -> None:
    """Write ``history`` into the cloud tables ingest fills."""
    devices = history.device_ids[history.row_device]
    ends = [iso(_time(t)) for t in history.window_end]
    insert_rows(
        db,
        "devices",
        (
            {"device_id": str(d), "gateway_id": GATEWAY, "device_type": str(t)}
            for d, t in zip(history.device_ids, history.device_types, strict=True)
        ),
    )
    columns = ("feature_set_version", "window_end", "device_id", "values_f32")
    values = zip(
        [history.feature_set_version] * len(ends), ends, devices.tolist(), encode(history.features), strict=True
    )
    insert_rows(db, "features", (dict(zip(columns, row, strict=True)) for row in values))
    insert_rows(
        db,
        "outcomes",
        [
            {
                "outcome_id": f"fail-{i}",
                "device_id": f.device_id,
                "source": "technician",
                "observed_at": iso(f.failed_at),
                "component": f.component.value,
                "result": "failed",
                "gateway_id": GATEWAY,
                "received_at": iso(f.failed_at + timedelta(hours=1)),
            }
            for i, f in enumerate(history.failures)
        ],
    )
    measured = np.flatnonzero(np.isfinite(history.usage_next_24h_litres))
    insert_rows(
        db,
        "predictions",
        [
            {
                "prediction_id": f"p-{i}",
                "arm": "champion",
                "device_id": str(devices[i]),
                "prediction_type": "usage_pattern",
                "model_name": "usage_pattern",
                "model_version": "0",
                "outputs_json": "{}",
                "made_at": ends[i],
                "feature_window_end": ends[i],
                "gateway_id": GATEWAY,
            }
            for i in measured.tolist()
        ],
    )
    insert_rows(
        db,
        "outcomes",
        [
            {
                "outcome_id": f"usage-{i}",
                "device_id": str(devices[i]),
                "source": "sensor",
                "observed_at": iso(_time(history.window_end[i]) + timedelta(days=1)),
                "prediction_id": f"p-{i}",
                "value": float(history.usage_next_24h_litres[i]),
                "gateway_id": GATEWAY,
                "received_at": iso(_time(history.window_end[i]) + timedelta(days=1)),
            }
            for i in measured.tolist()
        ],
    )


@pytest.fixture(scope="session")
def fleet_history() -> History:
    return generate_history(heaters=300, days=90, seed=11, calibration=ACCELERATED)  # the fast fleet, named


@pytest.fixture(scope="session")
def fleet_database(
    tmp_path_factory: pytest.TempPathFactory, fleet_history: History, _postgres_run: postgres_run.Schema | None
) -> Iterator[Path | postgres_run.Schema]:
    """The fleet stored once: a SQLite file, or on PostgreSQL a schema of its own."""
    if _postgres_run is None:
        path = tmp_path_factory.mktemp("fleet") / "iotsphere.db"
        target: Path | postgres_run.Schema = path
    else:
        target = postgres_run.new_schema(_postgres_run.admin, "fleet")
    db = open_database(path if _postgres_run is None else target.url)
    store_history(db, fleet_history)
    db.close()
    yield target
    if isinstance(target, postgres_run.Schema):
        target.drop()


@pytest.fixture
def config(tmp_path: Path, fleet_database: Path | postgres_run.Schema, _postgres_run) -> CloudConfig:
    """A cloud data folder whose database already holds the fleet."""
    data_dir = tmp_path / "cloud"
    data_dir.mkdir()
    if isinstance(fleet_database, Path):
        shutil.copyfile(fleet_database, data_dir / "iotsphere.db")
    else:
        _postgres_run.copy_rows(fleet_database, FLEET_TABLES)
    return CloudConfig(data_dir=data_dir, mqtt_url="mqtt://127.0.0.1:1883", topic_prefix=f"test-{tmp_path.name}/v1")


@pytest.fixture
def db(config: CloudConfig) -> Iterator[sqlite_utils.Database]:
    database = open_database(config.database_url)
    yield database
    database.close()


@pytest.fixture
def span(fleet_history: History) -> tuple[datetime, datetime]:
    """The fleet's first and last window ends (plus one second: end dates are exclusive)."""
    return _time(fleet_history.window_end.min()), _time(fleet_history.window_end.max()) + timedelta(seconds=1)
