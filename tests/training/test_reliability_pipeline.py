"""A training run on a small simulated fleet stores the reliability figures, and `train evaluate` prints them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from cloud.config import CloudConfig
from cloud.pipeline.training import ModelTrainingPipeline
from cloud.storage import open_database
from cloud.training.reliability import COMPONENTS
from firmware_sim.history import History
from iotsphere.cli import main
from tests.training.conftest import store_history


def _time(value) -> datetime:
    return value.astype("datetime64[us]").astype(datetime).replace(tzinfo=UTC)


def test_a_training_run_stores_reliability_figures_and_train_evaluate_prints_them(history: History, tmp_path):
    config = CloudConfig(data_dir=tmp_path, mqtt_url="mqtt://127.0.0.1:1883", topic_prefix=f"test-{tmp_path.name}/v1")
    db = open_database(config.database_path)
    store_history(history, db)
    pipeline = ModelTrainingPipeline(db, config, passphrase="")
    start, end = _time(history.window_end.min()), _time(history.window_end.max()) + timedelta(seconds=1)
    options = {"release": False, "candidates": ["hist_gradient_boosting"], "holdout_fraction": 0.5}
    run = pipeline.trigger_model_training("component_failure", start, end, options, actor="tester")
    run = pipeline.run_next(run.run_id) or pipeline.runs.get(run.run_id)
    assert run.model_version == "1", run.error

    [stored] = pipeline.evaluations("component_failure", "1")
    figures = stored["metrics"]["reliability"]
    overall = figures["at_budget"]["overall"]
    assert figures["budget_false_per_100_heater_months"] == 1.0 and figures["heater_months"] > 0
    assert overall["failures"] > 0 and 0 <= overall["recall"] <= 1
    assert set(figures["at_budget"]["per_component"]) == set(COMPONENTS)
    low, high = overall["recall_ci"]
    assert low <= overall["recall"] <= high
    assert figures["brier"] < 0.1 and figures["reliability_curve"]
    assert set(figures["splits"]) == {"time", "heater"}
    # every baseline beside the model, those that learn fitted on the run's training slice
    baselines = figures["baselines"]
    assert set(baselines) == {"firmware_error_codes", "single_feature_rule", "logistic_regression"}
    assert all("at_budget" in b and "ranking" in b for b in baselines.values())
    assert set(baselines["single_feature_rule"]["rules"]) <= set(COMPONENTS)
    # the shared budget and the time-to-failure view beside them, and the gate's word on the baselines
    assert sum(figures["shared_budget"]["budget_per_component"].values()) <= 5.0
    assert all("shared_budget" in b for b in baselines.values())
    assert set(figures["time_to_failure"]["per_component"]) == set(COMPONENTS)
    assert run.result["gate"]["baselines"]["reason"]
    db.conn.close()

    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    shown = runner.invoke(main, ["train", "evaluate", "component_failure", "1", *data], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert any(line.startswith("at 1.0 false dispatch per 100 heater-months per component") for line in lines)
    assert any(line.strip().startswith("model ") and "recall" in line for line in lines)
    # the baselines that learn are fitted on the span version 1 was trained on, which its lineage names
    for baseline in ("firmware_error_codes", "single_feature_rule", "logistic_regression"):
        assert any(line.strip().startswith(baseline) and "recall" in line for line in lines), baseline
    assert any(line.startswith("Brier ") for line in lines)
    assert any(line.startswith("sharing 5 false dispatches per 100 heater-months") for line in lines)
    assert any(line.startswith("alarmed rows by days to their component's next failure") for line in lines)

    def as_json(*options: str) -> dict:
        result = runner.invoke(main, ["train", "evaluate", "component_failure", "1", "--json", *options, *data])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["metrics"]["reliability"]

    default, wider = as_json(), as_json("--budget", "5")
    assert (default["budget_false_per_100_heater_months"], wider["budget_false_per_100_heater_months"]) == (1.0, 5.0)
    assert wider["at_budget"]["overall"]["false_dispatches"] > default["at_budget"]["overall"]["false_dispatches"]
    refused = runner.invoke(main, ["train", "evaluate", "component_failure", "1", "--budget", "0", *data])
    assert refused.exit_code == 2 and "--budget" in refused.output
