"""Cold start through the real path, for every model type: history file → ``iotsphere cloud train`` → ONNX,
release file and metrics → registry → ``iotsphere cloud release`` (TUF) → a gateway's ngclient download over
HTTP → the edge loader's checks → predictions named by the release."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from click.testing import CliRunner

from cloud.config import PASSPHRASE_ENV
from cloud.feature_store import FeatureStore
from cloud.registry import MLModelRegistry
from cloud.storage import open_database
from cloud.training.data import history_failures, history_findings, rows_from_history
from edge_agent.inference import Heater, predict
from edge_agent.model_loader import FeatureContract, load_model
from firmware_sim.history import generate_history
from iotsphere.cli import main
from shared.messages import OutcomeResult, PredictionType
from shared.release import ReleaseFile
from tests.releases.conftest import PASSPHRASE
from tests.training.conftest import HORIZON

CASES = [
    # type, estimators compared, the held-out score, what a prediction reports
    (PredictionType.COMPONENT_FAILURE, ["logistic_regression", "random_forest"], "mean_pr_auc", "heating_element"),
    (PredictionType.USAGE_PATTERN, ["ridge"], "neg_mae_litres", "litres_next_24h"),
    (PredictionType.ANOMALY, ["isolation_forest"], "failure_roc_auc", "anomaly_score"),
]


@pytest.mark.parametrize(("prediction_type", "candidates", "score_name", "output"), CASES)
def test_train_command_releases_through_tuf_and_the_edge_serves_it(
    history_file, initialized, make_updater, tmp_path, prediction_type, candidates, score_name, output
):
    history, path = history_file
    data_dir = str(initialized.data_dir)
    runner = CliRunner(env={PASSPHRASE_ENV: PASSPHRASE})
    args = ["cloud", "train", "--history", str(path), "--model", prediction_type.value, "--data-dir", data_dir]
    result = runner.invoke(main, [*args, *(f"--candidate={name}" for name in candidates)])
    assert result.exit_code == 0, result.output
    assert f"held-out {score_name}" in result.output

    folder = initialized.artifacts_dir / prediction_type.value / "1"
    release = ReleaseFile.model_validate_json((folder / "release.json").read_bytes())
    metrics = json.loads((folder / "metrics.json").read_text())
    assert release.prediction_type == prediction_type and release.model_length == (folder / "model.onnx").stat().st_size
    assert metrics["score_name"] == score_name == metrics["holdout"]["score_name"]
    assert metrics["estimator"] in candidates and metrics["holdout"]["rows"] > 0
    assert release.lineage["split"]["holdout_from"] > release.lineage["split"]["train_until"]
    row = MLModelRegistry(open_database(initialized.database_path)).get_version(prediction_type.value, "1")
    assert row["status"] == "candidate" and row["model_sha256"] == release.model_sha256

    released = runner.invoke(main, ["cloud", "release", str(folder), "--data-dir", data_dir])
    assert released.exit_code == 0, released.output
    assert f"Signed {prediction_type.value} version 1 into TUF" in released.output

    updater = make_updater("gw-cold-start")
    updater.refresh()
    downloaded = {}
    for target in (release.model_target, f"models/{prediction_type.value}/1/release.json"):
        info = updater.get_targetinfo(target)
        assert info is not None, target
        downloaded[target] = (tmp_path / target.replace("/", "_")).resolve()
        updater.download_target(info, str(downloaded[target]))
    served_release = ReleaseFile.model_validate_json(
        downloaded[f"models/{prediction_type.value}/1/release.json"].read_bytes()
    )
    contract = FeatureContract(history.feature_set_version, tuple(history.feature_names))
    loaded = load_model(downloaded[release.model_target].read_bytes(), served_release, features=contract)

    heaters = [Heater(str(d), str(t)) for d, t in zip(history.device_ids[:3], history.device_types[:3], strict=True)]
    features = np.nan_to_num(history.features[: len(heaters)])
    predictions = predict({prediction_type.value: loaded}, features, heaters, None, datetime.now(UTC))
    assert len(predictions) == len(heaters)
    assert all(output in p.outputs and np.isfinite(p.outputs[output]) for p in predictions)


def test_an_unknown_candidate_for_the_type_is_a_clear_error(history_file, tmp_path):
    _, path = history_file
    args = ["cloud", "train", "--history", str(path), "--model", "usage_pattern", "--candidate", "logistic_regression"]
    result = CliRunner().invoke(main, [*args, "--data-dir", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "not usage_pattern estimators" in result.output and "ridge" in result.output


def test_too_short_a_history_is_a_clear_error(tmp_path, initialized):
    path = tmp_path / "short.npz"
    generate_history(heaters=10, days=12, seed=1).save(path)
    args = ["cloud", "train", "--history", str(path), "--data-dir", str(initialized.data_dir)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "simulate more" in result.output


def test_a_model_ships_unscored_when_its_held_out_period_has_nothing_to_score(history_file, tmp_path, initialized):
    history, _ = history_file
    # the same fleet, but every failure repaired before the held-out weeks: nothing there to score
    cutoff = history.window_end.min() + (history.window_end.max() - history.window_end.min()) // 2
    calm = replace(
        history, failures=[f for f in history.failures if np.datetime64(f.failed_at.replace(tzinfo=None)) < cutoff]
    )
    path = tmp_path / "calm.npz"
    calm.save(path)
    data_dir = initialized.data_dir
    args = ["cloud", "train", "--history", str(path), "--candidate", "logistic_regression", "--data-dir", str(data_dir)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "not evaluated on the held-out period" in result.output
    metrics = json.loads((data_dir / "artifacts" / "component_failure" / "1" / "metrics.json").read_text())
    assert "holdout" not in metrics and metrics["estimator"] == "logistic_regression"


def test_cold_start_stores_the_history_it_trained_on_in_the_feature_store(history_file, initialized):
    """The feature store starts with the history, labelled as a utility would have it (technicians' findings,
    not the simulator's ground truth), so the training pipeline trains on those labels."""
    history, path = history_file
    data_dir = initialized.data_dir
    args = ["cloud", "train", "--history", str(path), "--candidate", "logistic_regression", "--data-dir", str(data_dir)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    findings = history_findings(history)
    assert 0 < len(findings) < len(history.failures)  # some missed
    stored = f"feature store: {len(history.features):,} new feature rows, {len(findings):,} new technician findings"
    assert stored in result.output

    db = open_database(data_dir / "iotsphere.db")
    start = history.window_end.min().astype(datetime).replace(tzinfo=UTC)
    end = history.window_end.max().astype(datetime).replace(tzinfo=UTC) + timedelta(seconds=1)
    dataset = FeatureStore(db).get_training_dataset(
        None, start, end, horizon=HORIZON, as_of=end, prediction_type=PredictionType.ANOMALY
    )
    assert dataset.record.row_count == len(history.features)  # every row, with its heater's type
    stored = dataset.values[np.lexsort((dataset.device_ids, dataset.window_ends))]
    trained_on = history.features[np.lexsort((history.device_ids[history.row_device], history.window_end))]
    assert np.array_equal(stored, trained_on, equal_nan=True)
    types = dict(db.execute("SELECT device_id, device_type FROM devices").fetchall())
    assert types == dict(zip(history.device_ids.tolist(), history.device_types.tolist(), strict=True))
    # the labels are the findings received by then, dated by the visit, found failed or worn (replaced) ...
    received = [f for f in findings if f.received_at <= end]
    technician, _ = history_failures(history, "technician")
    by_device = technician.device.astype(np.int64), technician.time, technician.label
    store = dataset.failures
    assert sorted(zip(*by_device, strict=True)) == sorted(
        zip(np.searchsorted(history.device_ids, store.device), store.time, store.label, strict=True)
    )
    assert len(store.time) == len(received)
    results = dict(db.execute("SELECT result, COUNT(*) FROM outcomes GROUP BY result").fetchall())
    assert results == {  # every finding, those received after ``end`` too: a later dataset reads them
        "failed": sum(f.result is OutcomeResult.FAILED for f in findings),
        "replaced": sum(f.result is OutcomeResult.REPLACED for f in findings),
    }
    assert results["replaced"] > 0
    # ... never the ground truth, which labels other rows
    truth = {(f.device_id, np.datetime64(f.failed_at.replace(tzinfo=None), "s")) for f in history.failures}
    assert not truth & set(zip(store.device.tolist(), store.time, strict=True))
    labelled = rows_from_history(history, PredictionType.COMPONENT_FAILURE, HORIZON, labels="technician")
    assert (labelled.targets > 0).sum() > 0

    again = CliRunner().invoke(main, args)  # a second model type trained from the same file adds nothing
    assert again.exit_code == 0, again.output
    assert "feature store: 0 new feature rows, 0 new technician findings" in again.output
    db.conn.close()
