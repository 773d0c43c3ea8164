"""A small simulated fleet: the monitor's labels agree with the training labels, its figures with scikit-learn.

The simulator's failures arrive as technician outcomes; a noisy oracle scores each feature row as the gateways'
model would, and each usage row gets a prediction and the sensor's measured litres. The monitor labels a prediction
'any failure' exactly when training's point-in-time labelling (``cloud.training.labels``) gives the row a failure
class, and 'none' exactly when it gives class 0.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlite_utils
from sklearn.metrics import brier_score_loss, mean_absolute_error, roc_auc_score

from cloud.monitoring.performance import ModelPerformanceMonitor
from cloud.storage import iso
from cloud.training.labels import failure_times, label_rows
from firmware_sim.history import History, generate_history

HORIZON = timedelta(days=14)


def _time(value: np.datetime64) -> datetime:
    return value.astype("datetime64[us]").astype(datetime).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def history() -> History:
    return generate_history(heaters=40, days=60, seed=5, workers=1)


def _store(db: sqlite_utils.Database, history: History, any_failure_proba: np.ndarray) -> None:
    devices = history.device_ids[history.row_device].tolist()
    made = [iso(_time(t)) for t in history.window_end]
    usage = history.usage_next_24h_litres.astype(np.float64)
    rows = []
    for i, (device, at) in enumerate(zip(devices, made, strict=True)):
        rows.append((f"cf-{i}", device, "component_failure", json.dumps({"none": 1 - any_failure_proba[i]}), at))
        if np.isfinite(usage[i]):
            rows.append((f"up-{i}", device, "usage_pattern", json.dumps({"litres_next_24h": 0.8 * usage[i] + 20}), at))
    with db.conn:
        db.conn.executemany(
            "INSERT INTO predictions (prediction_id, arm, device_id, device_type, prediction_type, model_name,"
            " model_version, outputs_json, latency_ms, made_at, gateway_id) VALUES (?, 'champion', ?, 'sim', ?3, ?3,"
            " '1', ?, 1.0, ?, 'gw-sim')",
            rows,
        )
        db.conn.executemany(
            "INSERT INTO outcomes (outcome_id, device_id, source, observed_at, component, result, received_at)"
            " VALUES (?, ?, 'technician', ?, ?, 'failed', ?)",
            [
                (f"fail-{n}", f.device_id, iso(f.failed_at), f.component.value, iso(f.failed_at))
                for n, f in enumerate(history.failures)
            ],
        )
        db.conn.executemany(
            "INSERT INTO outcomes (outcome_id, device_id, source, observed_at, prediction_id, value, received_at)"
            " VALUES (?, ?, 'sensor', ?, ?, ?, ?)",
            [
                (f"use-{i}", devices[i], made[i], f"up-{i}", float(usage[i]), made[i])
                for i in np.flatnonzero(np.isfinite(usage)).tolist()
            ],
        )


def test_monitor_labels_match_training_labels_on_a_simulated_fleet(history: History, db: sqlite_utils.Database):
    observed_until = history.window_end.max()
    labels = label_rows(
        history.row_device,
        history.window_end,
        failure_times(history.failures, history.device_ids),
        HORIZON,
        observed_until,
    )
    rng = np.random.default_rng(0)
    proba = np.clip(0.5 * (labels > 0) + rng.uniform(0, 0.6, labels.size), 0, 1).round(4)
    _store(db, history, proba)
    start, end = _time(history.window_end.min()), _time(observed_until) + timedelta(seconds=1)
    monitor = ModelPerformanceMonitor(db, HORIZON)

    failure = monitor.compute_metrics("component_failure", start, end, "all", (), as_of=_time(observed_until))
    usage = monitor.compute_metrics("usage_pattern", start, end, "all", ())

    labelled = labels >= 0
    y, p = (labels[labelled] > 0).astype(int), 1 - (1 - proba[labelled])
    assert y.sum() > 20 and (y == 0).sum() > 1000  # failures happened and the horizon passed for most rows
    [cell] = failure["cells"]
    figures = cell["classification"]["any"]
    assert (cell["predictions"], figures["n"], figures["positives"]) == (labels.size, y.size, y.sum())
    assert figures["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert figures["brier"] == pytest.approx(brier_score_loss(y, p))
    measured = history.usage_next_24h_litres.astype(np.float64)
    measured = measured[np.isfinite(measured)]
    [usage_cell] = usage["cells"]
    assert usage_cell["regression"]["n"] == measured.size
    assert usage_cell["regression"]["mae"] == pytest.approx(mean_absolute_error(measured, 0.8 * measured + 20))
