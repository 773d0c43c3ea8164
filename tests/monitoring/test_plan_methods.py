"""ModelPerformanceMonitor carries the plan's three method names over the real modules that do the work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.monitoring.performance import ModelPerformanceMonitor
from cloud.registry import UnknownModel
from cloud.storage import iso, open_database


def _usage_prediction(db, made_at: datetime) -> None:
    """One gateway's usage prediction by version 1 of ``usage_pattern``."""
    db["predictions"].insert(
        {
            "prediction_id": "p1",
            "arm": "champion",
            "device_id": "wh-1",
            "prediction_type": "usage_pattern",
            "model_name": "usage_pattern",
            "model_version": "1",
            "outputs_json": '{"litres_next_24h": 80.0}',
            "latency_ms": 1.0,
            "made_at": iso(made_at),
        }
    )


def test_drift_and_report_are_reachable_from_the_monitor(tmp_path: Path):
    db = open_database(tmp_path / "m.db")
    monitor = ModelPerformanceMonitor(db)
    _usage_prediction(db, datetime.now(UTC))  # as ingest stores it: the model is known
    monitor.track_prediction_metrics(
        "usage_pattern", {"mae_litres": 12.5}, datetime.now(UTC), model_name="usage_pattern"
    )

    report = monitor.generate_performance_report("usage_pattern", time_period="last_day")

    (model,) = report["models"]
    assert model["model_name"] == "usage_pattern"
    assert [(p["metric"], p["value"]) for p in model["tracked"]] == [("mae_litres", 12.5)]
    with pytest.raises(UnknownModel):
        monitor.detect_model_drift("usage_pattern")  # nothing registered yet: a clear error, not a crash


def test_a_prediction_made_within_a_millisecond_of_the_period_end_falls_in_its_last_window(tmp_path: Path):
    db = open_database(tmp_path / "m.db")
    end = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
    _usage_prediction(db, end - timedelta(microseconds=300))
    result = ModelPerformanceMonitor(db).compute_metrics("usage_pattern", end - timedelta(days=1), end, "1h")
    (cell,) = result["cells"]
    assert cell["window_end"] == iso(end) and cell["predictions"] == 1
