"""Performance metrics from 1M outcomes: ``ModelPerformanceMonitor.compute_metrics`` on a stored fleet.

Two models over 100 days, 5,000 heaters, 2 versions × 2 device types × 2 arms:
- ``component_failure``: 1M predictions, 1M technician/sensor findings (3 % failed or replaced, the rest ok);
- ``usage_pattern``: 1M predictions, each with a sensor outcome (litres), and 50,000 ratings.
Each is computed per version × device type × arm × day (the default), and over a tenth of the period to see how
the time grows with rows. The database is built with plain ``executemany``; only the computation is timed.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from cloud.monitoring.performance import ModelPerformanceMonitor
from cloud.storage import iso, open_database
from shared.messages import Component

ROWS = 1_000_000
HEATERS = 5_000
DAYS = 100
RATINGS = 50_000
START = datetime(2026, 1, 1, tzinfo=UTC)
COMPONENTS = [c.value for c in Component]
_PREDICTION = "INSERT INTO predictions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
_OUTCOME = (
    "INSERT INTO outcomes (outcome_id, device_id, source, observed_at, prediction_id, component, result, value,"
    " gateway_id, received_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
)


def _times(rng: np.random.Generator, n: int, days: float = DAYS) -> list[str]:
    seconds = np.sort(rng.integers(0, int(days * 86400), n))
    return [iso(START + timedelta(seconds=int(s))) for s in seconds]


def _predictions(db, rng: np.random.Generator, model: str) -> tuple[list[str], list[str], list[str]]:
    ids = [f"{model[:2]}{i:010d}" for i in range(ROWS)]
    devices = [f"wh-{d:05d}" for d in rng.integers(0, HEATERS, ROWS)]
    made = _times(rng, ROWS)
    versions, types, arms = rng.integers(1, 3, ROWS), rng.integers(0, 2, ROWS), rng.integers(0, 2, ROWS)
    latency = rng.gamma(2.0, 0.02, ROWS)
    if model == "component_failure":
        p = rng.dirichlet([20, 1, 1, 1, 1, 1], ROWS)
        outputs = [json.dumps(dict(zip(["none", *COMPONENTS], row, strict=True))) for row in p.round(5).tolist()]
    else:
        outputs = [json.dumps({"litres_next_24h": v}) for v in rng.gamma(6.0, 30.0, ROWS).round(2).tolist()]
    rows = (
        (ids[i], ("champion", "challenger")[arms[i]], devices[i], ("tank-50", "heat-pump-80")[types[i]], model, model,
         str(versions[i]), outputs[i], float(latency[i]), made[i], made[i], "gw-1", ids[i])
        for i in range(ROWS)
    )  # fmt: skip
    with db.conn:
        db.conn.executemany(_PREDICTION, rows)
    return ids, devices, made


def _build(db) -> None:
    rng = np.random.default_rng(7)
    _ids, _devices, _made = _predictions(db, rng, "component_failure")
    findings = rng.random(ROWS) < 0.03
    components = rng.integers(0, len(COMPONENTS), ROWS)
    observed = _times(rng, ROWS, DAYS + 14)
    devices = rng.integers(0, HEATERS, ROWS)
    rows = (
        (f"oc{i:010d}", f"wh-{devices[i]:05d}", "technician", observed[i], None, COMPONENTS[components[i]],
         ("failed" if components[i] % 2 else "replaced") if findings[i] else "ok", None, "gw-1", observed[i])
        for i in range(ROWS)
    )  # fmt: skip
    with db.conn:
        db.conn.executemany(_OUTCOME, rows)
    ids, devices_u, made = _predictions(db, rng, "usage_pattern")
    litres = rng.gamma(6.0, 30.0, ROWS)
    rows = (
        (f"ou{i:010d}", devices_u[i], "sensor", made[i], ids[i], None, None, float(litres[i]), "gw-1", made[i])
        for i in range(ROWS)
    )
    with db.conn:
        db.conn.executemany(_OUTCOME, rows)
    rated = rng.choice(ROWS, RATINGS, replace=False)
    with db.conn:
        db.conn.executemany(
            "INSERT INTO feedback (feedback_id, prediction_id, rating, submitted_at) VALUES (?,?,?,?)",
            ((f"fb{i:08d}", ids[r], int(rng.integers(1, 6)), made[r]) for i, r in enumerate(rated)),
        )


def _timed(monitor: ModelPerformanceMonitor, model: str, days: int) -> dict:
    began = time.perf_counter()
    result = monitor.compute_metrics(model, START, START + timedelta(days=days), "1d")
    seconds = time.perf_counter() - began
    return {"seconds": round(seconds, 2), "predictions": sum(c["predictions"] for c in result["cells"])}


def run() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        db = open_database(Path(folder) / "iotsphere.db")
        began = time.perf_counter()
        _build(db)
        build_seconds = time.perf_counter() - began
        monitor = ModelPerformanceMonitor(db)
        figures = {
            model: {"tenth": _timed(monitor, model, DAYS // 10), "full": _timed(monitor, model, DAYS)}
            for model in ("component_failure", "usage_pattern")
        }
        db.conn.close()
    for entry in figures.values():
        entry["growth_10x_rows"] = round(entry["full"]["seconds"] / entry["tenth"]["seconds"], 2)
    return {
        "rows_per_model": ROWS,
        "outcomes_per_model": ROWS,
        "heaters": HEATERS,
        "days": DAYS,
        "cells_per_model": DAYS * 8,
        "build_seconds": round(build_seconds, 1),
        "compute_metrics": figures,
    }
