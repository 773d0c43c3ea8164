"""A small simulated fleet history (file and object), and the same history stored in a real cloud database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlite_utils

from cloud.storage import open_database
from cloud.training.cli import store_history as store_cold_start_history
from firmware_sim.calibration import ACCELERATED
from firmware_sim.history import History, generate_history
from tests.releases.conftest import config, initialized, make_updater, tuf_server  # noqa: F401 (TUF fixtures)

HORIZON = timedelta(days=14)


@pytest.fixture(scope="session")
def history_file(tmp_path_factory) -> tuple[History, Path]:
    history = generate_history(heaters=300, days=90, seed=11, calibration=ACCELERATED)  # the fast fleet, named
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
    """What ingest would have stored had the fleet run live: what cold start stores (feature rows and what
    technicians found of the failures, ``cloud.training.cli.store_history``), and per row a usage prediction with a
    sensor outcome of the next 24 h's litres, received an hour after those 24 h (rows whose 24 h ran past the
    history get none)."""
    store_cold_start_history(db, history)
    ends = _iso(history.window_end)
    devices = history.device_ids[history.row_device].tolist()
    with db.conn:
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
