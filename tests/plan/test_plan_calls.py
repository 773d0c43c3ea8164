"""The seed plan's 15 methods, each called exactly as the plan writes it (positional arguments, plain dicts, date
strings, no keyword the plan does not give), on real SQLite files; defaults fill in the rest: the configured actor,
the director from the database's own data folder, "monthly", the artifact folder's release.json.

Promotion and rollback direct real gateways: versions 1 and 2 signed into a real TUF repository, documents retained
on the machine's Mosquitto under a unique topic prefix (``tests.releases``)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from cloud.config import PASSPHRASE_ENV, CloudConfig
from cloud.feature_store import FeatureStore
from cloud.feedback import InvalidFeedback, PredictionFeedbackService
from cloud.monitoring.performance import ModelPerformanceMonitor
from cloud.pipeline.runs import RunStatus
from cloud.pipeline.training import ModelTrainingPipeline
from cloud.registry import MLModelRegistry, RegistryRefused
from cloud.releases.keystore import KeystoreError
from cloud.storage import iso, open_database
from firmware_sim.history import History
from shared.features import FEATURE_NAMES
from tests.api import seed
from tests.pipeline.conftest import fleet_database, fleet_history  # noqa: F401  (fixtures)
from tests.releases.conftest import PASSPHRASE, clear_retained, onnx_models, released_cloud, write_artifacts  # noqa: F401

NAME = "component_failure"
GATEWAYS = ["gw-plan-1", "gw-plan-2"]
ACTOR = "plan-tester"


@pytest.fixture(autouse=True)
def _configured_actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTSPHERE_ACTOR", ACTOR)
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_database(tmp_path / "iotsphere.db")
    yield database
    database.conn.close()


# -- PredictionFeedbackService -------------------------------------------------------------------------------------


def test_record_prediction_outcome_takes_the_plans_dict_and_source(db: sqlite_utils.Database):
    seed.device(db, "wh-1")
    prediction_id = seed.prediction(db, "wh-1").prediction_id
    service = PredictionFeedbackService(db)

    recorded = service.record_prediction_outcome(
        prediction_id, {"component": "heating_element", "result": "failed", "notes": "burnt out"}, "technician"
    )

    [row] = db["outcomes"].rows_where("outcome_id = ?", [recorded.id])
    assert (row["prediction_id"], row["source"], row["component"], row["result"]) == (
        prediction_id,
        "technician",
        "heating_element",
        "failed",
    )
    assert service.outcomes(prediction_id, decrypt=True)[0].notes == "burnt out"
    with pytest.raises(InvalidFeedback, match="component"):
        service.record_prediction_outcome(
            prediction_id, {"component": "flux_capacitor", "result": "failed"}, "technician"
        )
    with pytest.raises(InvalidFeedback, match="result or a value"):
        service.record_prediction_outcome(prediction_id, {}, "technician")
    with pytest.raises(InvalidFeedback, match="technician, sensor"):
        service.record_prediction_outcome(prediction_id, {"result": "ok"}, "psychic")
    assert db["outcomes"].count == 1


def test_record_user_feedback(db: sqlite_utils.Database):
    seed.device(db, "wh-1")
    prediction_id = seed.prediction(db, "wh-1").prediction_id

    recorded = PredictionFeedbackService(db).record_user_feedback(prediction_id, 4, "spot on")

    [row] = db["feedback"].rows_where("feedback_id = ?", [recorded.id])
    assert (row["prediction_id"], row["rating"]) == (prediction_id, 4)


# -- MLModelRegistry -----------------------------------------------------------------------------------------------


def test_register_model_with_empty_metadata_reads_the_release_file(
    db: sqlite_utils.Database,
    tmp_path: Path,
    onnx_models: dict[int, bytes],  # noqa: F811
):
    made = write_artifacts(tmp_path / "artifacts" / "3", NAME, "3", onnx_models[1])
    registry = MLModelRegistry(db)

    row = registry.register_model(NAME, "3", str(made.directory), {})

    stored = registry.get_version(NAME, "3")
    assert stored["model_sha256"] == hashlib.sha256(onnx_models[1]).hexdigest() == row["model_sha256"]
    assert (stored["prediction_type"], stored["feature_set_version"], stored["status"]) == (NAME, "1", "candidate")

    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(RegistryRefused, match="prediction_type, feature_set_version, model_sha256"):
        registry.register_model(NAME, "4", str(bare), {})
    with pytest.raises(RegistryRefused, match="describes component_failure version 3"):
        registry.register_model(NAME, "5", str(made.directory), {})
    assert [v["model_version"] for v in registry.list_versions(NAME)] == ["3"]


@pytest.fixture
def released(
    tmp_path: Path,
    onnx_models: dict[int, bytes],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[CloudConfig]:
    """Versions 1 and 2 released; the registry finds the keys next to its database and the broker configured."""
    config = released_cloud(tmp_path, onnx_models, GATEWAYS, NAME)
    monkeypatch.setenv("IOTSPHERE_MQTT_URL", config.mqtt_url)
    monkeypatch.setenv("IOTSPHERE_TOPIC_PREFIX", config.topic_prefix)
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    yield config
    clear_retained(config, GATEWAYS)


@pytest.mark.mqtt
def test_promote_model_to_production_with_the_plans_two_arguments(released: CloudConfig):
    db = open_database(released.database_path)
    registry = MLModelRegistry(db)

    change = registry.promote_model_to_production(NAME, "1")

    assert (change.history["actor"], change.history["reason"]) == (ACTOR, f"promoted by {ACTOR}")
    assert sorted(d.signed.gateway_id for d in change.documents) == GATEWAYS and change.pending is None
    assert registry.get_version(NAME, "1")["status"] == "production"


@pytest.mark.mqtt
def test_get_active_model(released: CloudConfig):
    db = open_database(released.database_path)
    registry = MLModelRegistry(db)
    assert registry.get_active_model(NAME) is None
    registry.promote_model_to_production(NAME, "2")

    assert registry.get_active_model(NAME)["model_version"] == "2"


@pytest.mark.mqtt
def test_rollback_model_with_the_plans_one_argument(released: CloudConfig):
    db = open_database(released.database_path)
    registry = MLModelRegistry(db)
    registry.promote_model_to_production(NAME, "1")
    registry.promote_model_to_production(NAME, "2")

    change = registry.rollback_model(NAME)

    assert (change.history["from_version"], change.history["to_version"]) == ("2", "1")
    assert change.history["reason"] == f"rolled back by {ACTOR}"
    assert registry.get_active_model(NAME)["model_version"] == "1"
    assert {d.signed.models[NAME].version for d in change.documents} == {"1"}


def test_without_the_passphrase_a_promotion_names_the_variable_and_changes_nothing(
    tmp_path: Path,
    onnx_models: dict[int, bytes],  # noqa: F811
):
    config = released_cloud(tmp_path, onnx_models, GATEWAYS, NAME)
    db = open_database(config.database_path)

    with pytest.raises(KeystoreError, match=PASSPHRASE_ENV):
        MLModelRegistry(db).promote_model_to_production(NAME, "1")
    metadata = {"prediction_type": NAME, "feature_set_version": "1", "model_sha256": "3" * 64}
    MLModelRegistry(db).register_model(NAME, "3", str(tmp_path / "nowhere"), metadata)
    with pytest.raises(RegistryRefused, match="not released"):  # a refusal needs no passphrase
        MLModelRegistry(db).promote_model_to_production(NAME, "3")
    assert db["model_history"].count == 0 and MLModelRegistry(db).get_active_model(NAME) is None


# -- ModelTrainingPipeline, FeatureStore, ModelPerformanceMonitor over a simulated fleet ----------------------------


@pytest.fixture
def fleet(tmp_path: Path, fleet_database: Path) -> Iterator[tuple[CloudConfig, sqlite_utils.Database]]:  # noqa: F811
    data_dir = tmp_path / "fleet"
    data_dir.mkdir()
    shutil.copyfile(fleet_database, data_dir / "iotsphere.db")
    config = CloudConfig(data_dir=data_dir)
    database = open_database(config.database_path)
    yield config, database
    database.conn.close()


def _days(history: History) -> tuple[str, str]:
    """The fleet's first and last days as the plan writes dates: "2026-01-01" text."""
    first = history.window_end.min().astype("datetime64[D]")
    last = history.window_end.max().astype("datetime64[D]") + 1
    return str(first), str(last)


def test_trigger_model_training_and_evaluate_model_performance_take_date_strings(
    fleet: tuple[CloudConfig, sqlite_utils.Database],
    fleet_history: History,  # noqa: F811
):
    config, db = fleet
    pipeline = ModelTrainingPipeline(db, config)
    start, end = _days(fleet_history)

    queued = pipeline.trigger_model_training("usage_pattern", start, end)

    assert (queued.start_date, queued.end_date, queued.requested_by) == (
        f"{start}T00:00:00.000000Z",
        f"{end}T00:00:00.000000Z",
        ACTOR,
    )
    run = pipeline.run_next(queued.run_id)
    assert run.status == RunStatus.SUCCEEDED, run.error

    evaluation = pipeline.evaluate_model_performance("usage_pattern", run.model_version, run.dataset_id)

    assert evaluation["dataset_id"] == run.dataset_id and evaluation["rows"] > 0
    assert pipeline.evaluations("usage_pattern", run.model_version)[0]["id"] == evaluation["id"]


def test_schedule_regular_training_defaults_to_monthly(db: sqlite_utils.Database, tmp_path: Path):
    pipeline = ModelTrainingPipeline(db, CloudConfig(data_dir=tmp_path))

    schedule = pipeline.schedule_regular_training(NAME)

    assert (schedule.schedule, schedule.created_by) == ("monthly", ACTOR)
    assert [s.schedule_id for s in pipeline.schedules.list()] == [schedule.schedule_id]


def test_feature_store_calls_with_the_plans_dates(db: sqlite_utils.Database):
    store = FeatureStore(db)
    features = {name: float(i) for i, name in enumerate(FEATURE_NAMES)}

    assert store.store_device_features("wh-plan", features, "2026-01-01T06:00:00Z")
    assert store.store_device_features("wh-plan", features, datetime(2026, 1, 1, 12, tzinfo=UTC))

    rows = store.get_device_features("wh-plan", FEATURE_NAMES[:2], ("2026-01-01", "2026-01-01T12:00:00"))
    assert rows.window_ends == ["2026-01-01T06:00:00.000000Z"]
    assert rows.values.tolist() == [[0.0, 1.0]]

    dataset = store.get_training_dataset(FEATURE_NAMES, "2026-01-01", "2026-01-02")
    assert dataset.record.query["start_date"] == "2026-01-01T00:00:00.000000Z"
    assert dataset.record.query["end_date"] == "2026-01-02T00:00:00.000000Z"
    with pytest.raises(ValueError, match="start_date 'January 1st' is not an ISO-8601 date"):
        store.get_training_dataset(FEATURE_NAMES, "January 1st", "2026-01-02")


def test_track_prediction_metrics_takes_a_time_string(db: sqlite_utils.Database):
    monitor = ModelPerformanceMonitor(db)
    at = datetime.now(UTC) - timedelta(hours=1)

    stored = monitor.track_prediction_metrics("usage_pattern", {"mae_litres": 11.0}, iso(at))

    assert stored == 1
    points = monitor.metric_points(model_name="usage_pattern", source="tracked")
    assert [(p["metric"], p["value"], p["at"]) for p in points] == [("mae_litres", 11.0, iso(at))]


def test_detect_model_drift_and_generate_performance_report(
    fleet: tuple[CloudConfig, sqlite_utils.Database],
    fleet_history: History,  # noqa: F811
):
    config, db = fleet
    pipeline = ModelTrainingPipeline(db, config)
    run = pipeline.run_next(pipeline.trigger_model_training("usage_pattern", *_days(fleet_history)).run_id)
    assert run.status == RunStatus.SUCCEEDED, run.error
    monitor = ModelPerformanceMonitor(db)

    drift = monitor.detect_model_drift("usage_pattern")
    report = monitor.generate_performance_report("usage_pattern", "last_month")

    assert drift["model_version"] == run.model_version
    assert [model["model_name"] for model in report["models"]] == ["usage_pattern"]
    first, last = _days(fleet_history)  # a window as the plan writes dates
    windowed = monitor.detect_model_drift("usage_pattern", window=(first, last))
    assert windowed["window"]["start"].startswith(first) and windowed["window"]["end"].startswith(last)
