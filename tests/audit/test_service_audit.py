"""Every change is audited by the service that makes it, however it is called: a direct call of the service class,
the API (the caller's key as actor) or the CLI (the configured actor); never with a note or comment, and a change
whose entry cannot be written is not made."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlite_utils
from click.testing import CliRunner
from sqlalchemy.exc import IntegrityError

from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.audit import AuditLog
from cloud.config import CloudConfig
from cloud.data.connections import in_transaction
from cloud.feature_store import FeatureStore
from cloud.feedback import ActualOutcome, PredictionFeedbackService
from cloud.monitoring.drift import record_check
from cloud.monitoring.performance import ModelPerformanceMonitor
from cloud.pipeline.training import ModelTrainingPipeline
from cloud.releases import tuf_repo
from cloud.releases.model_rows import RegistryMismatch, record_release
from cloud.releases.rotation import rotate_key
from cloud.retraining.service import RetrainingService
from cloud.storage import open_database
from iotsphere.cli import main
from shared.features import FEATURE_NAMES
from shared.messages import Prediction
from tests.api import seed
from tests.api.conftest import auth
from tests.releases.conftest import PASSPHRASE, artifacts, initialized, onnx_models  # noqa: F401  (fixtures)
from tests.rows import audit_head, refusing_audit_entries, rows_of, update_rows

NOTE, COMMENT = "customer swore at the technician", "gate code 4471"
SECRETS = (NOTE, COMMENT)
START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)


def _entries(db: sqlite_utils.Database, after: int = 0) -> list[dict[str, Any]]:
    return [row for row in rows_of(db, "audit_log") if row["id"] > after]


def _head(db: sqlite_utils.Database) -> int:
    return audit_head(db)


def _pipeline(db: sqlite_utils.Database, config: CloudConfig) -> ModelTrainingPipeline:
    return ModelTrainingPipeline(db, config, passphrase="")


def _drift_result() -> dict[str, Any]:
    """What ``detect_model_drift`` returns, as far as ``record_check`` reads it."""
    return {
        "model_name": "anomaly",
        "model_version": "3",
        "device_type": None,
        "window": {"start": "2026-01-01T00:00:00.000000Z", "end": "2026-01-08T00:00:00.000000Z"},
        "checked_at": "2026-01-08T00:00:00.000000Z",
        "status": "ok",
        "feature_drift": {"drifted": []},
        "data_quality": {"findings": []},
        "performance": {"status": "ok"},
    }


def _features(db: sqlite_utils.Database) -> None:
    store = FeatureStore(db)
    for hour in range(3):
        store.store_device_features("wh-1", dict.fromkeys(FEATURE_NAMES, 1.0), START + timedelta(hours=hour))


@dataclass(frozen=True)
class Change:
    """One mutating service method: what it records, the table whose rows it changes, and the call (``actor``
    passed through) on what ``SETUPS`` made first (else the test's prediction)."""

    action: str
    table: str
    call: Callable[..., Any]


def _outcome(db, config, prediction, **actor):
    outcome = ActualOutcome(component="heating_element", result="failed", technician="tech-17", notes=NOTE)
    return PredictionFeedbackService(db).record_prediction_outcome(
        prediction.prediction_id, outcome, "technician", **actor
    )


def _rating(db, config, prediction, **actor):
    return PredictionFeedbackService(db).record_user_feedback(prediction.prediction_id, 2, COMMENT, "tech-17", **actor)


def _queued(db, config):
    return _pipeline(db, config).trigger_model_training("anomaly", START, END, actor="setup").run_id


def _scheduled(db, config):
    return _pipeline(db, config).schedule_regular_training("anomaly", "daily", actor="setup").schedule_id


def _key(db, config):
    return KeyStore(db).create(Role.VIEWER, "to revoke", actor="setup").key.key_id


CHANGES = {
    "feedback outcome": Change("feedback.outcome", "outcomes", _outcome),
    "feedback rating": Change("feedback.rate", "feedback", _rating),
    "training trigger": Change(
        "training.trigger",
        "training_runs",
        lambda db, config, _, **a: _pipeline(db, config).trigger_model_training("anomaly", START, END, **a),
    ),
    "training cancel": Change(
        "training.cancel",
        "training_runs",
        lambda db, config, run_id, **a: _pipeline(db, config).cancel_run(run_id, **a),
    ),
    "training schedule": Change(
        "training.schedule",
        "training_schedules",
        lambda db, config, _, **a: _pipeline(db, config).schedule_regular_training("anomaly", "weekly", **a),
    ),
    "training unschedule": Change(
        "training.unschedule",
        "training_schedules",
        lambda db, config, schedule_id, **a: _pipeline(db, config).unschedule(schedule_id, **a),
    ),
    "retraining policy": Change(
        "retraining.policy",
        "retraining_policies",
        lambda db, config, _, **a: RetrainingService(db, config, "").set_policy("anomaly", {"enabled": True}, **a),
    ),
    "retraining check": Change(
        "retraining.check",
        "retraining_decisions",
        lambda db, config, _, **a: RetrainingService(db, config, "").check("anomaly", **a),
    ),
    "drift check": Change(
        "drift.check", "drift_checks", lambda db, config, _, **a: record_check(db, _drift_result(), **a)
    ),
    "key create": Change(
        "admin.create-key", "api_keys", lambda db, config, _, **a: KeyStore(db).create("viewer", "ann", **a)
    ),
    "key revoke": Change(
        "admin.revoke-key", "api_keys", lambda db, config, key_id, **a: KeyStore(db).revoke(key_id, **a)
    ),
    "metric points": Change(
        "monitoring.track",
        "metric_points",
        lambda db, config, _, **a: ModelPerformanceMonitor(db).track_prediction_metrics(
            "anomaly", {"score": 0.5}, START, "3", **a
        ),
    ),
    "dataset": Change(
        "datasets.build",
        "datasets",
        lambda db, config, _, **a: FeatureStore(db).get_training_dataset(None, START, END, **a),
    ),
}
SETUPS: dict[str, Callable[[sqlite_utils.Database, CloudConfig], Any]] = {
    "training cancel": _queued,
    "training unschedule": _scheduled,
    "key revoke": _key,
    "dataset": lambda db, config: _features(db),
}


@pytest.fixture
def prediction(db: sqlite_utils.Database) -> Prediction:
    seed.device(db, "wh-1")
    return seed.prediction(db, "wh-1")


def _arranged(name: str, db: sqlite_utils.Database, config: CloudConfig, prediction: Prediction) -> Any:
    """What the change acts on, made before the entries a test looks at."""
    return SETUPS[name](db, config) if name in SETUPS else prediction


@pytest.mark.parametrize("name", CHANGES)
def test_a_direct_call_records_the_actor_it_is_given_and_no_note_or_comment(name, db, config, prediction) -> None:
    subject = _arranged(name, db, config, prediction)
    before = _head(db)

    CHANGES[name].call(db, config, subject, actor="ops:alice")

    entries = _entries(db, before)
    assert (entries[-1]["actor"], entries[-1]["action"]) == ("ops:alice", CHANGES[name].action)
    assert {entry["actor"] for entry in entries} == {"ops:alice"}
    assert not any(secret in json.dumps(entries) for secret in SECRETS)


@pytest.mark.parametrize("name", ["feedback outcome", "training trigger", "key create", "metric points"])
def test_a_direct_call_without_an_actor_records_the_configured_one(
    name, db, config, prediction, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject = _arranged(name, db, config, prediction)
    monkeypatch.delenv("IOTSPHERE_ACTOR", raising=False)
    CHANGES[name].call(db, config, subject)
    monkeypatch.setenv("IOTSPHERE_ACTOR", "robot:nightly")
    CHANGES[name].call(db, config, _arranged(name, db, config, seed.prediction(db, "wh-1")))

    actors = [entry["actor"] for entry in _entries(db) if entry["action"] == CHANGES[name].action]
    assert actors[-2:] == [f"cli:{getpass.getuser()}", "robot:nightly"]


@pytest.mark.parametrize("name", CHANGES)
def test_a_change_whose_audit_entry_cannot_be_written_is_not_made(name, db, config, prediction) -> None:
    subject = _arranged(name, db, config, prediction)
    before_rows = rows_of(db, CHANGES[name].table)
    before = _head(db)

    with refusing_audit_entries(db), pytest.raises(IntegrityError):
        CHANGES[name].call(db, config, subject, actor="ops:alice")

    assert rows_of(db, CHANGES[name].table) == before_rows
    assert _head(db) == before and not in_transaction(db)


def test_a_refused_change_records_nothing(db, config, prediction) -> None:
    _outcome(db, config, prediction, actor="ops:alice")
    [first] = rows_of(db, "outcomes")
    other = seed.prediction(db, "wh-1")
    run_id = _queued(db, config)
    _pipeline(db, config).cancel_run(run_id, actor="ops:alice")
    before = _head(db)
    reused = ActualOutcome(result="ok", outcome_id=first["outcome_id"])

    with pytest.raises(ValueError, match="already used for another prediction"):
        PredictionFeedbackService(db).record_prediction_outcome(other.prediction_id, reused, "sensor", actor="x")
    with pytest.raises(ValueError, match="only a queued run"):
        _pipeline(db, config).cancel_run(run_id, actor="x")
    with pytest.raises(ValueError, match="a gateway key needs"):
        KeyStore(db).create(Role.GATEWAY, "gw", actor="x")

    assert _head(db) == before


def _key_id(token: str) -> str:
    return token.split("_")[1]


@pytest.mark.parametrize(
    ("method", "path", "body", "action"),
    [
        ("POST", "/api/predictions/{pid}/feedback", {"rating": 2, "comments": COMMENT}, "feedback.rate"),
        ("POST", "/api/predictions/{pid}/outcome", {"result": "ok", "notes": NOTE}, "feedback.outcome"),
        (
            "POST",
            "/api/training/runs",
            {
                "model_name": "anomaly",
                "training_data_start_date": "2026-01-01T00:00:00Z",
                "training_data_end_date": "2026-02-01T00:00:00Z",
            },
            "training.trigger",
        ),
        ("POST", "/api/training/schedules", {"model_name": "anomaly", "schedule": "daily"}, "training.schedule"),
        ("PATCH", "/api/retraining/policies/anomaly", {"enabled": True}, "retraining.policy"),
        (
            "POST",
            "/api/monitoring/metrics",
            {"prediction_type": "anomaly", "metrics": {"score": 0.5}, "timestamp": "2026-01-01T00:00:00Z"},
            "monitoring.track",
        ),
    ],
)
def test_an_api_call_records_the_service_entry_with_the_key_as_actor_and_nothing_per_request(
    method, path, body, action, http: httpx.Client, tokens: dict[Role, str], db, prediction
) -> None:
    token = tokens[Role.OPERATOR]
    before = _head(db)

    response = http.request(method, path.format(pid=prediction.prediction_id), json=body, headers=auth(token))

    assert response.status_code < 300, response.text
    [entry] = _entries(db, before)
    assert (entry["actor"], entry["action"]) == (f"key:{_key_id(token)}", action)
    assert not any(secret in json.dumps(entry) for secret in SECRETS)


def _cli(config: CloudConfig, *args: str, actor: str | None = None) -> str:
    env = {"IOTSPHERE_ACTOR": actor} if actor else {"IOTSPHERE_ACTOR": ""}
    result = CliRunner().invoke(main, [*args, "--data-dir", str(config.data_dir)], env=env)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    ("args", "action"),
    [
        (("feedback", "outcome", "{pid}", "--notes", NOTE, "--result", "{n}"), "feedback.outcome"),
        (("feedback", "rate", "{pid}", "--comments", COMMENT, "{n}"), "feedback.rate"),
        (("train", "run", "anomaly", "--from", "2026-01-01", "--to", "2026-02-01", "--no-release"), "training.trigger"),
        (("train", "schedule", "anomaly", "daily"), "training.schedule"),
        (("retraining", "enable", "anomaly"), "retraining.policy"),
        (("admin", "create-key", "--role", "viewer", "--name", "ann"), "admin.create-key"),
    ],
)
def test_a_cli_command_records_the_configured_actor(args, action, config, db, prediction) -> None:
    def argv(n: int) -> list[str]:  # feedback differs each time: the same finding or rating again stores nothing
        values = {"pid": prediction.prediction_id, "n": ["ok", "failed"][n] if action == "feedback.outcome" else n + 2}
        return [arg.format(**values) for arg in args]

    _cli(config, *argv(0))
    _cli(config, *argv(1), actor="robot:cron")

    entries = [entry for entry in _entries(db) if entry["action"] == action]
    assert [entry["actor"] for entry in entries] == [f"cli:{getpass.getuser()}", "robot:cron"]
    assert not any(secret in json.dumps(entries) for secret in SECRETS)


def test_a_release_and_a_key_rotation_called_directly_record_their_actor_and_a_refused_release_nothing(
    initialized: CloudConfig,  # noqa: F811
    artifacts,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = artifacts(version="1")
    published = tuf_repo.add_release(initialized, PASSPHRASE, made.release_json, made.onnx_bytes)
    db = open_database(initialized.database_url)
    try:
        record_release(db, published, actor="ops:alice")
        monkeypatch.setenv("IOTSPHERE_ACTOR", "robot:release")
        record_release(db, published)  # recorded again, as the configured actor
        rotate_key(initialized, PASSPHRASE, "timestamp", actor="ops:bob")
        update_rows(db, "models", {"model_name": "component_failure", "model_version": "1"}, {"model_sha256": "0" * 64})
        with pytest.raises(RegistryMismatch):
            record_release(db, published, actor="ops:alice")
        entries = AuditLog(db).entries()
    finally:
        db.close()

    assert [(e.actor, e.action, e.target) for e in entries] == [
        ("ops:alice", "cloud.release", "component_failure/1"),
        ("robot:release", "cloud.release", "component_failure/1"),
        ("ops:bob", "admin.rotate-key", "timestamp"),
    ]
    assert entries[0].details["model_sha256"] == published.model_target.hashes["sha256"]
    assert PASSPHRASE not in json.dumps([e.details for e in entries])
