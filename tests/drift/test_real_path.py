"""The whole path on a real fleet database: a training run stores the reference with the version; the world
changes (colder inlet water, households drawing more); the check, over HTTP and the CLI, finds both."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from click.testing import CliRunner

from cloud.ingest.feature_codec import encode
from cloud.monitoring.reference import load_reference
from cloud.pipeline.runs import RunStatus
from cloud.pipeline.training import ModelTrainingPipeline
from cloud.storage import iso
from cloud.training.onnx_export import INPUT_NAME, session
from iotsphere.cli import main
from tests.api.conftest import auth, served_cloud
from tests.pipeline.conftest import config, db, fleet_database, fleet_history, span  # noqa: F401 (fixtures)

MODEL = "usage_pattern"
INLET = "inlet_temperature_c"


def _recent_world(db, history, version_folder, now: datetime) -> int:  # noqa: F811
    """The fleet's last three days replayed up to ``now`` with inlet water 6 °C colder, the version's own
    predictions on them (run in onnxruntime), and sensor outcomes 70 % above what the history drew."""
    last = history.window_end.max()
    recent = np.flatnonzero(history.window_end > last - np.timedelta64(3, "D"))
    values = history.features[recent].copy()
    values[:, history.feature_names.index(INLET)] -= 6.0
    ends = [
        iso(now - timedelta(hours=1) - (last - t).astype("timedelta64[s]").item()) for t in history.window_end[recent]
    ]
    devices = history.device_ids[history.row_device[recent]].tolist()
    types = history.device_types[history.row_device[recent]].tolist()
    predicted = session((version_folder / "model.onnx").read_bytes()).run(None, {INPUT_NAME: np.nan_to_num(values)})[0]
    litres = history.usage_next_24h_litres[recent]
    measured = [i for i in range(len(recent)) if np.isfinite(litres[i])]
    with db.conn:
        db.conn.executemany(
            "INSERT INTO features (feature_set_version, window_end, device_id, values_f32) VALUES (?,?,?,?)",
            zip([history.feature_set_version] * len(ends), ends, devices, encode(values), strict=True),
        )
        db["predictions"].insert_all(
            {
                "prediction_id": f"drift-{i}",
                "arm": "champion",
                "device_id": devices[i],
                "device_type": types[i],
                "prediction_type": MODEL,
                "model_name": MODEL,
                "model_version": version_folder.name,
                "outputs_json": json.dumps({"litres_next_24h": float(np.ravel(predicted[i])[0])}),
                "made_at": ends[i],
                "feature_window_end": ends[i],
                "gateway_id": "gw-pipe-1",
            }
            for i in measured
        )
        db["outcomes"].insert_all(
            {
                "outcome_id": f"drift-usage-{i}",
                "device_id": devices[i],
                "source": "sensor",
                "observed_at": iso(now - timedelta(minutes=30)),
                "prediction_id": f"drift-{i}",
                "value": float(litres[i]) * 1.7,
            }
            for i in measured
        )
    return len(measured)


@pytest.mark.timeout(600)
def test_reference_stored_at_training_and_drift_found_over_http_and_the_cli(db, config, span, fleet_history):  # noqa: F811
    pipeline = ModelTrainingPipeline(db, config, passphrase="")
    queued = pipeline.trigger_model_training(MODEL, *span, {"release": False, "candidates": ["ridge"]}, actor="tester")
    run = pipeline.run_next(queued.run_id)
    assert run.status == RunStatus.SUCCEEDED, run.error
    folder = config.artifacts_dir / MODEL / run.model_version

    reference = load_reference(db, MODEL, run.model_version)
    assert json.loads((folder / "reference.json").read_text()) == reference
    assert set(reference["segments"]) == set(fleet_history.device_types.tolist())
    assert reference["feature_names"] == fleet_history.feature_names and reference["all"]["rows"] > 1000
    assert len(json.dumps(reference)) < 400_000

    outcomes = _recent_world(db, fleet_history, folder, datetime.now(UTC))
    assert outcomes > 100

    with served_cloud(config) as cloud:
        viewer, operator = cloud.tokens["viewer"], cloud.tokens["operator"]
        looked = cloud.http.get(f"/api/monitoring/drift/{MODEL}", params={"days": 4}, headers=auth(viewer))
        assert looked.status_code == 200, looked.text
        result = looked.json()
        assert result["model_version"] == run.model_version and result["status"] == "drift"
        assert INLET in result["feature_drift"]["drifted"]
        assert "setpoint_c" not in result["feature_drift"]["drifted"]
        segments = result["feature_drift"]["segments"]
        assert set(segments) == {"all", *fleet_history.device_types.tolist()}
        assert all(INLET in segments[name]["drifted"] for name in segments)
        assert result["performance"]["status"] == "degraded" and result["performance"]["outcomes"] == outcomes
        assert cloud.http.get(f"/api/monitoring/drift/{MODEL}/history", headers=auth(viewer)).json() == []

        refused = cloud.http.post(f"/api/monitoring/drift/{MODEL}/check", json={"days": 4}, headers=auth(viewer))
        assert refused.status_code == 403
        checked = cloud.http.post(
            f"/api/monitoring/drift/{MODEL}/check",
            json={"days": 4, "device_type": fleet_history.device_types[0]},
            headers=auth(operator),
        )
        assert checked.status_code == 201, checked.text
        assert set(checked.json()["feature_drift"]["segments"]) == {fleet_history.device_types[0]}
        [entry] = cloud.http.get(f"/api/monitoring/drift/{MODEL}/history", headers=auth(viewer)).json()
        assert entry["id"] == checked.json()["check_id"] and INLET in entry["drifted"]
        assert entry["status"] == "drift" and entry["performance_status"] == "degraded"

        assert cloud.http.get("/api/monitoring/drift/toaster", headers=auth(viewer)).status_code == 404
        assert cloud.http.get(f"/api/monitoring/drift/{MODEL}?days=0", headers=auth(viewer)).status_code == 422
        assert cloud.http.get(f"/api/monitoring/drift/{MODEL}").status_code == 401

    runner = CliRunner()
    data_dir = ["--data-dir", str(config.data_dir)]
    checked = runner.invoke(main, ["drift", "check", MODEL, "--days", "4", *data_dir])
    assert checked.exit_code == 0, checked.output
    assert f"{MODEL} version {run.model_version}: drift" in checked.output and INLET in checked.output
    listed = runner.invoke(main, ["drift", "history", MODEL, *data_dir])
    header, *entries = listed.output.strip().splitlines()
    assert listed.exit_code == 0 and header.split()[:2] == ["ID", "CHECKED_AT"] and len(entries) == 2
    assert runner.invoke(main, ["drift", "history", "anomaly", *data_dir]).output.startswith("none")
    unknown = runner.invoke(main, ["drift", "check", "toaster", *data_dir])
    assert unknown.exit_code != 0 and "unknown model 'toaster'" in unknown.output
