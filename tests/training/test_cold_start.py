"""Cold start through the real path: simulated history → training → ONNX → golden vectors → registry."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from cloud.cli import main
from cloud.registry import MLModelRegistry
from cloud.storage import open_database
from cloud.training.component_failure import train_component_failure
from cloud.training.labels import CLASSES
from firmware_sim.history import generate_history
from shared.release import ReleaseFile


@pytest.fixture(scope="module")
def history_file(tmp_path_factory):
    history = generate_history(heaters=300, days=90, seed=11)
    path = tmp_path_factory.mktemp("history") / "history.npz"
    history.save(path)
    return history, path


@pytest.mark.parametrize("candidate", ["hist_gradient_boosting", "random_forest"])
def test_trained_model_ranks_failures_and_ships_as_checked_onnx(history_file, candidate):
    history, _ = history_file
    trained = train_component_failure(history, horizon=timedelta(days=14), candidates=[candidate])
    metrics = trained.metrics
    scored = {name: c["roc_auc"] for name, c in metrics["per_component"].items() if "roc_auc" in c}
    assert len(scored) >= 3, metrics["per_component"]
    # far better than chance on a later, held-out period
    assert metrics["mean_roc_auc"] > 0.75, metrics
    assert metrics["onnx_vs_sklearn_max_abs_diff"] < 1e-4
    assert trained.output_labels[0] == "none" and set(trained.output_labels) <= set(CLASSES)

    session = ort.InferenceSession(trained.exported.onnx_bytes, providers=["CPUExecutionProvider"])
    golden = trained.golden
    got = session.run(["probabilities"], {"features": np.array(golden.inputs, dtype=np.float32)})[0]
    assert np.allclose(got, np.array(golden.expected["probabilities"]), atol=golden.abs_tolerance)
    assert trained.split["holdout_from"] > trained.split["train_until"]


def test_train_command_writes_a_release_and_registers_a_candidate(history_file, tmp_path):
    _, path = history_file
    data_dir = tmp_path / "cloud"
    result = CliRunner().invoke(
        main,
        ["cloud", "train", "--history", str(path), "--data-dir", str(data_dir), "--candidate", "logistic_regression"],
    )
    assert result.exit_code == 0, result.output
    folder = data_dir / "artifacts" / "component_failure" / "1"
    release = ReleaseFile.model_validate_json((folder / "release.json").read_bytes())
    assert release.model_version == "1" and release.feature_set_version == history_file[0].feature_set_version
    assert release.model_length == (folder / "model.onnx").stat().st_size
    row = MLModelRegistry(open_database(data_dir / "iotsphere.db")).get_version("component_failure", "1")
    assert row["status"] == "candidate" and row["model_sha256"] == release.model_sha256
    assert "sha256" in release.lineage["dataset"]


def test_too_short_a_history_is_a_clear_error(tmp_path):
    path = tmp_path / "short.npz"
    generate_history(heaters=10, days=12, seed=1).save(path)
    result = CliRunner().invoke(main, ["cloud", "train", "--history", str(path), "--data-dir", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert "simulate more" in result.output
