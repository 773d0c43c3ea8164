"""ModelTrainingPipeline on a real SQLite database of a simulated fleet: runs, gate, evaluation, failures."""

from __future__ import annotations

import json
import socket
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from cloud.audit import AuditLog
from cloud.config import PASSPHRASE_ENV, CloudConfig
from cloud.pipeline.cli import GATE_REFUSED_EXIT, gate_refusal
from cloud.pipeline.runs import RunRefused, RunStatus
from cloud.pipeline.training import ModelTrainingPipeline, PipelineError
from cloud.registry import MLModelRegistry, RegistryRefused
from cloud.releases import tuf_repo
from cloud.storage import iso
from iotsphere.cli import main
from tests.registry.conftest import RecordingRollout
from tests.releases.conftest import PASSPHRASE
from tests.rows import rows_of, update_rows

#: one estimator where a model type compares several, to keep the suite quick
FAST = {"component_failure": ["logistic_regression"]}


def _pipeline(db: sqlite_utils.Database, config: CloudConfig, passphrase: str | None = None) -> ModelTrainingPipeline:
    return ModelTrainingPipeline(db, config, passphrase=passphrase or "")


@pytest.mark.parametrize("model_name", ["component_failure", "usage_pattern", "anomaly"])
def test_a_queued_run_trains_evaluates_and_registers_a_candidate_with_its_lineage(
    db: sqlite_utils.Database, config: CloudConfig, span: tuple[datetime, datetime], model_name: str
):
    pipeline = _pipeline(db, config)
    options = {"release": False, "candidates": FAST.get(model_name)}
    queued = pipeline.trigger_model_training(model_name, *span, options=options, actor="tester")
    assert queued.status == RunStatus.QUEUED and queued.progress == 0

    run = pipeline.run_next()

    assert run is not None and run.run_id == queued.run_id
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.progress == 1.0 and run.stage == "done" and run.finished_at
    messages = [line["message"] for line in pipeline.runs.logs(run.run_id)]
    assert any(m.startswith("dataset ") for m in messages) and messages[-1].startswith("succeeded")
    version = MLModelRegistry(db).get_version(model_name, run.model_version)
    assert version["status"] == "candidate"
    lineage = json.loads(version["lineage_json"])
    assert lineage["dataset_id"] == run.dataset_id and lineage["training_run_id"] == run.run_id
    record = pipeline.features.get_dataset_record(run.dataset_id)
    assert record.row_count > 1000 and record.query.get("prediction_type", "component_failure") == model_name
    # no production version: nothing to beat, so the candidate is promotable
    assert version["evaluation_passed"] == 1
    evaluation = pipeline.evaluations(model_name, run.model_version)[0]
    assert evaluation["dataset_id"] == run.dataset_id and evaluation["rows"] > 0
    assert (Path(lineage["artifacts_path"]) / "model.onnx").is_file()
    assert pipeline.run_next() is None  # nothing else queued


def test_challenger_must_beat_the_champion_by_the_margin_on_the_same_holdout(
    db: sqlite_utils.Database, config: CloudConfig, span: tuple[datetime, datetime]
):
    tuf_repo.init_repository(config, PASSPHRASE)
    pipeline = _pipeline(db, config, PASSPHRASE)
    registry = MLModelRegistry(db)
    name = "component_failure"
    options = {"candidates": ["logistic_regression"]}

    first = pipeline.run_next(pipeline.trigger_model_training(name, *span, options=options).run_id)
    assert first.status == RunStatus.SUCCEEDED, first.error
    assert registry.get_version(name, first.model_version)["status"] == "released"  # signed into TUF
    registry.promote_model_to_production(
        name, first.model_version, actor="tester", reason="first model", rollout=RecordingRollout()
    )

    # The same data and estimator make the same model: it cannot beat the champion by 20 %.
    second = pipeline.run_next(pipeline.trigger_model_training(name, *span, options={**options, "margin": 0.2}).run_id)
    assert second.status == RunStatus.SUCCEEDED, second.error
    gate = second.result["gate"]
    assert gate["passed"] is False and gate["champion"]["version"] == first.model_version
    assert gate["champion"]["rows"] == gate["challenger"]["rows"]  # scored on the same held-out rows
    assert gate["challenger"]["score"] == pytest.approx(gate["champion"]["score"], abs=1e-6)
    with pytest.raises(RegistryRefused, match="failed evaluation"):
        registry.promote_model_to_production(
            name, second.model_version, actor="tester", reason="try", rollout=RecordingRollout()
        )

    # The CLI says so and exits non-zero: a script must not take the refused challenger for a new model.
    days = ["--from", f"{span[0]:%Y-%m-%d}", "--to", f"{span[1]:%Y-%m-%d}"]
    refused = CliRunner().invoke(
        main,
        ["train", "run", name, *days, "--margin", "0.99", "--now", "--no-release", "--data-dir", str(config.data_dir)],
        env={PASSPHRASE_ENV: PASSPHRASE},
    )
    assert refused.exit_code == GATE_REFUSED_EXIT, refused.output
    assert "succeeded" in refused.output and "gate refused" in refused.output and "not promotable" in refused.output

    # With no margin a tie is enough.
    third = pipeline.run_next(pipeline.trigger_model_training(name, *span, options={**options, "margin": 0.0}).run_id)
    assert third.result["gate"]["passed"] is True and gate_refusal(third) is None
    assert registry.get_version(name, third.model_version)["evaluation_passed"] == 1


def test_a_failed_run_says_why_and_leaves_nothing_registered(
    db: sqlite_utils.Database, config: CloudConfig, span: tuple[datetime, datetime], monkeypatch
):
    tuf_repo.init_repository(config, PASSPHRASE)
    pipeline = _pipeline(db, config, PASSPHRASE)

    def refuse(*args, **kwargs):
        raise tuf_repo.ReleaseRefused("the repository refused the release")

    monkeypatch.setattr(tuf_repo, "add_release", refuse)  # fail at the last step, after registration
    run = pipeline.run_next(pipeline.trigger_model_training("anomaly", *span).run_id)

    assert run.status == RunStatus.FAILED and "refused the release" in run.error
    assert rows_of(db, "models") == []
    assert rows_of(db, "model_evaluations") == [] and rows_of(db, "model_references") == []
    assert not any((config.artifacts_dir / "anomaly").glob("*")), "artifact folder left behind"
    assert any("removed the half-made version" in line["message"] for line in pipeline.runs.logs(run.run_id))


def test_a_window_without_data_fails_with_a_clear_reason(db: sqlite_utils.Database, config: CloudConfig):
    pipeline = _pipeline(db, config)
    run = pipeline.run_next(
        pipeline.trigger_model_training("component_failure", datetime(2020, 1, 1), datetime(2020, 2, 1)).run_id
    )
    assert run.status == RunStatus.FAILED
    assert run.error and "rows" in run.error
    assert rows_of(db, "models") == []


def test_bad_requests_are_refused_before_queueing(db: sqlite_utils.Database, config: CloudConfig):
    pipeline = _pipeline(db, config)
    with pytest.raises(PipelineError, match="unknown model"):
        pipeline.trigger_model_training("toaster", datetime(2026, 1, 1), datetime(2026, 2, 1))
    with pytest.raises(PipelineError, match="must be before"):
        pipeline.trigger_model_training("anomaly", datetime(2026, 2, 1), datetime(2026, 1, 1))
    with pytest.raises(PipelineError, match="margin"):
        pipeline.trigger_model_training("anomaly", datetime(2026, 1, 1), datetime(2026, 2, 1), options={"margin": 2})
    with pytest.raises(PipelineError, match="unknown anomaly candidates"):
        pipeline.trigger_model_training(
            "anomaly", datetime(2026, 1, 1), datetime(2026, 2, 1), options={"candidates": ["magic"]}
        )
    with pytest.raises(PipelineError, match="unknown training options"):
        pipeline.trigger_model_training("anomaly", datetime(2026, 1, 1), datetime(2026, 2, 1), options={"x": 1})
    assert pipeline.runs.list() == []


def test_only_a_queued_run_can_be_cancelled_and_a_cancelled_one_never_runs(
    db: sqlite_utils.Database, config: CloudConfig, span: tuple[datetime, datetime]
):
    pipeline = _pipeline(db, config)
    run = pipeline.trigger_model_training("anomaly", *span)
    assert pipeline.cancel_run(run.run_id).status == RunStatus.CANCELLED
    with pytest.raises(RunRefused, match="only a queued run"):
        pipeline.cancel_run(run.run_id)
    assert pipeline.run_next() is None


def test_a_run_left_running_by_a_dead_worker_is_failed_when_a_worker_starts(
    db: sqlite_utils.Database, config: CloudConfig, span: tuple[datetime, datetime]
):
    pipeline = _pipeline(db, config)
    run = pipeline.trigger_model_training("anomaly", *span)
    gone = subprocess.Popen(["true"])
    gone.wait()

    update_rows(
        db,
        "training_runs",
        {"run_id": run.run_id},
        {"status": "running", "worker": f"{socket.gethostname()}:{gone.pid}"},
    )
    alive = pipeline.trigger_model_training("anomaly", *span)
    pipeline.runs.claim(alive.run_id)  # running in this (living) process

    assert pipeline.runs.fail_interrupted() == [run.run_id]
    failed = pipeline.runs.get(run.run_id)
    assert failed.status == RunStatus.FAILED and "interrupted" in failed.error
    assert pipeline.runs.get(alive.run_id).status == RunStatus.RUNNING


def test_evaluate_a_version_on_a_stored_dataset_and_on_a_time_holdout(
    db: sqlite_utils.Database, config: CloudConfig, span: tuple[datetime, datetime]
):
    pipeline = _pipeline(db, config)
    queued = pipeline.trigger_model_training("usage_pattern", *span, options={"release": False}, actor="ops")
    run = pipeline.run_next(queued.run_id)
    assert run.status == RunStatus.SUCCEEDED, run.error

    on_stored = pipeline.evaluate_model_performance("usage_pattern", run.model_version, run.dataset_id, actor="tester")
    assert on_stored["dataset_id"] == run.dataset_id and on_stored["evaluated_by"] == "tester"
    on_holdout = pipeline.evaluate_model_performance("usage_pattern", run.model_version, actor="auditor")
    assert on_holdout["dataset_id"] != run.dataset_id
    audited = [
        (e.actor, e.action, e.details.get("id"))
        for e in AuditLog(db).entries()
        if e.action.startswith(("training.", "datasets."))
    ]
    assert audited == [  # the run acts for whoever queued it; each evaluation for its caller, its dataset too
        ("ops", "training.trigger", None),
        ("ops", "datasets.build", None),
        ("ops", "training.evaluate", pipeline.evaluations("usage_pattern")[-1]["id"]),
        ("tester", "training.evaluate", on_stored["id"]),
        ("auditor", "datasets.build", None),
        ("auditor", "training.evaluate", on_holdout["id"]),
    ]
    # the held-out rows are a later slice of the stored dataset: fewer rows, and the model saw none of them
    assert 0 < on_holdout["rows"] < on_stored["rows"]
    assert on_holdout["score_name"] == on_stored["score_name"]
    assert [e["id"] for e in pipeline.evaluations("usage_pattern")][:2] == [on_holdout["id"], on_stored["id"]]

    with pytest.raises(PipelineError, match="another prediction type"):
        anomaly = pipeline.features.get_training_dataset(None, *span, prediction_type="anomaly")
        pipeline.evaluate_model_performance("usage_pattern", run.model_version, anomaly.record.dataset_id)
    before_any_data = pipeline.features.get_training_dataset(
        None, span[0] - timedelta(days=30), span[0], prediction_type="usage_pattern"
    )
    with pytest.raises(PipelineError, match="cannot score version .*no usable usage_pattern targets"):
        pipeline.evaluate_model_performance("usage_pattern", run.model_version, before_any_data.record.dataset_id)


def test_labels_as_of_a_time_end_the_failure_dataset_one_horizon_before_it(
    db: sqlite_utils.Database, config: CloudConfig, span: tuple[datetime, datetime]
):
    """Rows younger than the horizon can only be labelled failures: a run stops its dataset before them."""
    pipeline = _pipeline(db, config)
    as_of = span[1]
    options = {"release": False, "candidates": FAST["component_failure"], "as_of": iso(as_of)}
    run = pipeline.run_next(pipeline.trigger_model_training("component_failure", *span, options=options).run_id)

    assert run.status == RunStatus.SUCCEEDED, run.error
    query = pipeline.features.get_dataset_record(run.dataset_id).query
    assert query["end_date"] == iso(as_of - timedelta(days=14)) and query["as_of"] == iso(as_of)
    assert any("have no known outcome yet" in line["message"] for line in pipeline.runs.logs(run.run_id))

    young = {**options, "as_of": iso(span[0] + timedelta(days=10))}
    failed = pipeline.run_next(pipeline.trigger_model_training("component_failure", *span, options=young).run_id)
    assert failed.status == RunStatus.FAILED and "no rows with known outcomes" in failed.error
