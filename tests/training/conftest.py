"""A small simulated fleet history (file and object), and the same history stored in a real cloud database."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlite_utils

from cloud.ingest import feature_codec
from cloud.storage import open_database
from firmware_sim.history import History, generate_history
from tests.releases.conftest import config, initialized, make_updater, tuf_server  # noqa: F401 (TUF fixtures)

HORIZON = timedelta(days=14)


@pytest.fixture(scope="session")
def history_file(tmp_path_factory) -> tuple[History, Path]:
    history = generate_history(heaters=300, days=90, seed=11)
    path = tmp_path_factory.mktemp("history") / "history.npz"
    history.save(path)
    return history, path


@pytest.fixture(scope="session")
def history(history_file) -> History:
    return history_file[0]


def _iso(times: np.ndarray) -> list[str]:
    """``cloud.storage.iso`` text of datetime64 values."""
    return [f"{text}Z" for text in np.datetime_as_string(times.astype("datetime64[us]"), unit="us")]


def store_history(history: History, db: sqlite_utils.Database) -> None:
    """What ingest would have stored had the fleet run live: feature rows; a technician outcome per failure,
    received an hour after it; and per row a usage prediction with a sensor outcome of the next 24 h's litres,
    received an hour after those 24 h (rows whose 24 h ran past the history get none)."""
    ends = _iso(history.window_end)
    devices = history.device_ids[history.row_device].tolist()
    blobs = feature_codec.encode(history.features)
    with db.conn:
        db.execute(
            "INSERT OR IGNORE INTO feature_sets (version, names_json) VALUES (?, ?)",
            [history.feature_set_version, json.dumps(history.feature_names)],
        )
        db.conn.executemany(
            "INSERT INTO features (device_id, window_end, feature_set_version, values_f32) VALUES (?, ?, ?, ?)",
            zip(devices, ends, [history.feature_set_version] * len(ends), blobs, strict=True),
        )
        db.conn.executemany(
            "INSERT INTO devices (device_id, device_type) VALUES (?, ?)",
            zip(history.device_ids.tolist(), history.device_types.tolist(), strict=True),
        )
        failed = np.array([f.failed_at.replace(tzinfo=None) for f in history.failures], dtype="datetime64[s]")
        db.conn.executemany(
            "INSERT INTO outcomes (outcome_id, device_id, source, observed_at, component, result, received_at)"
            " VALUES (?, ?, 'technician', ?, ?, 'replaced', ?)",
            zip(
                [f"failure-{i}" for i in range(len(failed))],
                [f.device_id for f in history.failures],
                _iso(failed),
                [f.component.value for f in history.failures],
                _iso(failed + np.timedelta64(1, "h")),
                strict=True,
            ),
        )
        measured = np.flatnonzero(np.isfinite(history.usage_next_24h_litres))
        ids = [f"usage-{i}" for i in measured]
        db.conn.executemany(
            "INSERT INTO predictions (prediction_id, arm, device_id, prediction_type, model_name, model_version,"
            " outputs_json, made_at, feature_window_end) VALUES (?, 'champion', ?, 'usage_pattern', 'usage_pattern',"
            " '1', '{}', ?, ?)",
            zip(
                ids,
                [devices[i] for i in measured],
                [ends[i] for i in measured],
                [ends[i] for i in measured],
                strict=True,
            ),
        )
        after = history.window_end[measured] + np.timedelta64(24, "h")
        db.conn.executemany(
            "INSERT INTO outcomes (outcome_id, device_id, source, observed_at, prediction_id, value, received_at)"
            " VALUES (?, ?, 'sensor', ?, ?, ?, ?)",
            zip(
                [f"drawn-{i}" for i in measured],
                [devices[i] for i in measured],
                _iso(after),
                ids,
                history.usage_next_24h_litres[measured].astype(float).tolist(),
                _iso(after + np.timedelta64(1, "h")),
                strict=True,
            ),
        )


@pytest.fixture(scope="session")
def fleet_db(history: History, tmp_path_factory) -> sqlite_utils.Database:
    """A real SQLite cloud database holding the simulated history as ingest would have stored it."""
    db = open_database(tmp_path_factory.mktemp("cloud") / "iotsphere.db")
    store_history(history, db)
    return db
