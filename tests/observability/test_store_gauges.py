"""The gauges read from the database at scrape time follow what its owners' functions wrote."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.audit import AuditLog
from cloud.audit_checkpoints import AuditCheckpoints
from cloud.monitoring.drift import record_check
from cloud.pipeline.runs import RunStore
from cloud.registry import MLModelRegistry
from tests.observability.conftest import Cloud
from tests.observability.scrape import value

START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)


def _drift_result(version: str, drifted: list[str]) -> dict:
    return {
        "model_name": "component_failure",
        "model_version": version,
        "device_type": "tank-50",
        "window": {"start": "2026-02-01T00:00:00Z", "end": "2026-02-08T00:00:00Z"},
        "checked_at": "2026-02-08T00:00:00Z",
        "status": "drift" if drifted else "ok",
        "feature_drift": {"drifted": drifted},
        "data_quality": {"findings": []},
        "performance": {"status": "ok"},
    }


def test_runs_drift_and_audit_checkpoints_show_as_gauges(cloud: Cloud, tmp_path) -> None:
    runs = RunStore(cloud.db)
    runs.create("component_failure", START, END, "test")
    failed = runs.create("component_failure", START, END, "test")
    runs.claim(failed.run_id)
    runs.fail(failed.run_id, "no data")
    metadata = {"prediction_type": "component_failure", "feature_set_version": "1", "model_sha256": "0" * 64}
    MLModelRegistry(cloud.db).register_model("component_failure", "1", tmp_path, metadata)
    record_check(cloud.db, _drift_result("1", ["temp_mean", "power_mean"]))
    AuditCheckpoints(cloud.db).sign(Ed25519PrivateKey.generate())
    entries = len(AuditLog(cloud.db).entries(limit=1000))

    samples = cloud.scrape()

    assert value(samples, "iotsphere_training_runs", state="queued") == 1
    assert value(samples, "iotsphere_training_runs", state="failed") == 1
    assert value(samples, "iotsphere_training_runs", state="succeeded") == 0
    assert (
        value(samples, "iotsphere_training_run_last_duration_seconds", model="component_failure", state="failed") >= 0
    )
    assert value(samples, "iotsphere_drift_detected", model="component_failure") == 1
    assert value(samples, "iotsphere_drift_drifted_features", model="component_failure", version="1") == 2
    checked = datetime(2026, 2, 8, tzinfo=UTC).timestamp()
    assert value(samples, "iotsphere_drift_last_check_timestamp_seconds", model="component_failure") == checked
    assert value(samples, "iotsphere_audit_verified_entries") == entries
    assert value(samples, "iotsphere_audit_last_verified_timestamp_seconds") > START.timestamp()
    assert value(samples, "iotsphere_rollouts", state="running") == 0
    assert value(samples, "iotsphere_experiments", state="draft") == 0
    assert all(value(samples, "iotsphere_scrape_section_ok", section=s) == 1 for s in ("training", "drift", "audit"))
