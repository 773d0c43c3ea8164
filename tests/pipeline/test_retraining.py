"""Automated retraining on a real SQLite fleet: triggers, guards, follow-ups, and the record of every decision."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import sqlite_utils
from click.testing import CliRunner

from cloud.config import CloudConfig
from cloud.ingest.feature_codec import decode, encode
from cloud.pipeline.runs import RunStatus
from cloud.registry import MLModelRegistry
from cloud.releases import tuf_repo
from cloud.retraining.feedback_patterns import contradiction_counts, low_rating_counts, rise
from cloud.retraining.policy import InvalidPolicy
from cloud.retraining.service import RetrainingService
from cloud.storage import iso, open_database
from iotsphere.cli import main
from shared.features import FEATURE_NAMES
from tests.pipeline.conftest import GATEWAY
from tests.postgres_run import database_at
from tests.registry.conftest import RecordingRollout
from tests.releases.conftest import PASSPHRASE, clear_retained
from tests.rows import count, insert_row, insert_rows, rows_of

FAST = {"candidates": ["logistic_regression"]}


def test_a_rise_needs_a_sample_significance_and_size():
    assert not rise("x", (10, 20), (1, 20), min_sample=30, min_rise=0.1, alpha=0.05).fired  # too few
    fired = rise("x", (40, 100), (10, 100), min_sample=30, min_rise=0.1, alpha=0.05)
    assert fired.fired and fired.p_value < 0.001 and "rose" in fired.reason
    small = rise("x", (150, 1000), (100, 1000), min_sample=30, min_rise=0.1, alpha=0.05)
    assert small.p_value < 0.05 and not small.fired  # significant, but only 5 points
    flat = rise("x", (12, 100), (10, 100), min_sample=30, min_rise=0.0, alpha=0.05)
    assert flat.p_value > 0.05 and not flat.fired


def test_contradictions_and_low_ratings_are_counted_from_linked_rows(tmp_path):
    from cloud.storage import open_database

    db = open_database(database_at(tmp_path / "c.db"))
    t = datetime(2026, 3, 1, 12)
    insert_row(
        db,
        "models",
        {
            "model_name": "component_failure",
            "model_version": "1",
            "prediction_type": "component_failure",
            "status": "production",
            "created_at": iso(t),
            "feature_set_version": "v1",
            "model_sha256": "0",
            "metrics_json": json.dumps({"holdout": {"per_component": {"thermostat": {"threshold": 0.3}}}}),
        },
    )
    cases = [  # probability of thermostat, technician's finding, contradicts?
        (0.9, "failed", False),
        (0.1, "failed", True),
        (0.35, "ok", True),
        (0.2, "ok", False),
        (0.31, "replaced", False),
    ]
    for i, (p, result, _) in enumerate(cases):
        insert_row(
            db,
            "predictions",
            {
                "prediction_id": f"p{i}",
                "arm": "champion",
                "device_id": "wh-1",
                "prediction_type": "component_failure",
                "model_name": "component_failure",
                "model_version": "1",
                "outputs_json": json.dumps({"thermostat": p}),
                "made_at": iso(t),
            },
        )
        insert_row(
            db,
            "outcomes",
            {
                "outcome_id": f"o{i}",
                "device_id": "wh-1",
                "source": "technician",
                "observed_at": iso(t),
                "prediction_id": f"p{i}",
                "component": "thermostat",
                "result": result,
                "received_at": iso(t + timedelta(hours=i)),
            },
        )
        insert_row(
            db,
            "feedback",
            {
                "feedback_id": f"f{i}",
                "prediction_id": f"p{i}",
                "rating": i + 1,
                "submitted_at": iso(t + timedelta(hours=i)),
            },
        )
    assert contradiction_counts(db, "component_failure", t, t + timedelta(days=1)) == (2, 5)
    assert contradiction_counts(db, "component_failure", t, t + timedelta(hours=1)) == (0, 1)
    assert low_rating_counts(db, "component_failure", t, t + timedelta(days=1)) == (2, 5)
    assert low_rating_counts(db, "usage_pattern", t, t + timedelta(days=1)) == (0, 0)


def _production(db: sqlite_utils.Database, config: CloudConfig, service: RetrainingService, start, end) -> str:
    """Train, release and promote the champion through the real pipeline and registry."""
    run = service.pipeline.run_next(
        service.pipeline.trigger_model_training("component_failure", start, end, options=FAST).run_id
    )
    assert run.status == RunStatus.SUCCEEDED, run.error
    MLModelRegistry(db).promote_model_to_production(
        "component_failure", run.model_version, actor="t", reason="v1", rollout=RecordingRollout()
    )
    return run.model_version


def _add_labels(db: sqlite_utils.Database, count: int, at: datetime) -> None:
    insert_rows(
        db,
        "outcomes",
        (
            {
                "outcome_id": f"new-{i}-{iso(at)}",
                "device_id": "wh-x",
                "source": "technician",
                "observed_at": iso(at),
                "component": "sediment",
                "result": "ok",
                "received_at": iso(at),
            }
            for i in range(count)
        ),
    )


def _drift_the_last_week(db: sqlite_utils.Database, end: datetime, days: int = 7) -> datetime:
    """Copy the fleet's last week a week later with the inlet colder and the energy per litre higher."""
    since = iso(end - timedelta(days=days))
    columns = ("feature_set_version", "window_end", "device_id", "values_f32")
    rows = [tuple(row[c] for c in columns) for row in rows_of(db, "features") if row["window_end"] >= since]
    values = decode([r[3] for r in rows], len(FEATURE_NAMES)).copy()
    for name, change in (("inlet_temperature_c", -8.0), ("energy_wh", 1500.0)):
        values[:, FEATURE_NAMES.index(name)] += change
    later = [iso(datetime.fromisoformat(r[1].replace("Z", "+00:00")) + timedelta(days=days)) for r in rows]
    copies = [(r[0], w, r[2], b) for r, w, b in zip(rows, later, encode(values), strict=True)]
    insert_rows(db, "features", (dict(zip(columns, copy, strict=True)) for copy in copies))
    return end + timedelta(days=days)


def test_feature_drift_queues_a_run_then_the_guards_hold_the_next_one(
    db: sqlite_utils.Database, config: CloudConfig, span: tuple[datetime, datetime]
):
    tuf_repo.init_repository(config, PASSPHRASE)
    service = RetrainingService(db, config, PASSPHRASE)
    _production(db, config, service, *span)
    now = _drift_the_last_week(db, span[1])
    _add_labels(db, 60, now - timedelta(days=1))
    service.set_policy(
        "component_failure",
        {"enabled": True, "feedback": False, "min_new_labels": 50, "after_gate": "operator"},
        actor="tester",
    )

    queued = service.check("component_failure", now, actor="ops")

    assert queued["decision"] == "queued" and "feature drift" in queued["reason"], queued["reason"]
    (fired,) = [t for t in queued["evidence"]["triggers"] if t["kind"] == "feature_drift"]
    assert {"inlet_temperature_c", "energy_wh"} <= set(fired["evidence"]["drifted"]) and queued["open"]
    assert rows_of(db, "drift_checks", id=fired["evidence"]["drift_check_id"])[0]["status"] == "drift"
    run = service.pipeline.runs.get(queued["run_id"])
    assert run.status == RunStatus.QUEUED and run.requested_by == "ops"

    waiting = service.check("component_failure", now + timedelta(hours=1))
    assert waiting["decision"] == "skipped" and "is not settled yet" in waiting["reason"] and waiting["run_id"] is None

    assert service.pipeline.run_next().status == RunStatus.SUCCEEDED
    (followed,) = service.follow_up(now + timedelta(hours=2))
    assert followed["trigger"] == "follow_up" and followed["run_id"] == queued["run_id"]
    assert followed["decision"] in ("waiting_for_operator", "not_promotable")
    assert service.follow_up(now + timedelta(hours=3)) == []  # closed once

    again = service.check("component_failure", now + timedelta(hours=4))
    assert again["decision"] == "skipped" and "in cooldown" in again["reason"]
    service.set_policy("component_failure", {"cooldown_hours": 0, "min_new_labels": 1000}, actor="tester")
    held = service.check("component_failure", now + timedelta(hours=5))
    assert held["decision"] == "skipped" and "only 60 new labels" in held["reason"]
    assert [d["decision"] for d in service.decisions("component_failure")][:5] == [
        "skipped",
        "skipped",
        followed["decision"],
        "skipped",
        "queued",
    ]


@pytest.mark.parametrize("mode", ["split", "shadow"])
def test_a_due_schedule_is_held_by_the_guards_and_a_passing_challenger_goes_to_an_ab_test(
    db: sqlite_utils.Database, config: CloudConfig, span: tuple[datetime, datetime], mode: str
):
    tuf_repo.init_repository(config, PASSPHRASE)
    service = RetrainingService(db, config, PASSPHRASE)
    schedule = service.pipeline.schedule_regular_training(
        "component_failure", "daily", window_days=90, options={**FAST, "margin": 0.0}
    )
    fire = datetime.fromisoformat(schedule.next_run_at.replace("Z", "+00:00"))
    second = fire + timedelta(days=1)  # the first firing is held back; the second queues a run on this window
    _production(db, config, service, second - timedelta(days=90), second)  # the champion saw the same data
    service.set_policy(
        "component_failure", {"min_new_labels": 1, "cooldown_hours": 0, "experiment_mode": mode}, actor="tester"
    )
    insert_row(db, "gateways", {"gateway_id": GATEWAY, "last_seen": iso(fire)})  # the experiment's gateway

    (held,) = service.queue_due_schedules(fire + timedelta(minutes=1))
    assert held["trigger"] == "schedule" and held["decision"] == "skipped" and "new labels" in held["reason"]
    assert service.pipeline.runs.list(status=RunStatus.QUEUED) == []

    _add_labels(db, 5, fire + timedelta(hours=1))
    (queued,) = service.queue_due_schedules(second + timedelta(minutes=1))
    assert queued["decision"] == "queued" and queued["run_id"]
    assert service.pipeline.run_next().status == RunStatus.SUCCEEDED

    (started,) = service.follow_up(fire + timedelta(days=1, hours=1))
    assert started["decision"] == "experiment_started", started["reason"]
    [experiment] = rows_of(db, "experiments", experiment_id=started["experiment_id"])
    assert experiment["status"] == "running" and experiment["challenger_version"] == started["model_version"]
    assert experiment["mode"] == mode and experiment["challenger_percent"] == (50 if mode == "split" else 0)
    assert service.follow_up(fire + timedelta(days=1, hours=2)) == []  # no data yet: the experiment continues
    clear_retained(config, [GATEWAY])


def test_without_a_production_version_a_check_says_why_nothing_fired(db: sqlite_utils.Database, config: CloudConfig):
    service = RetrainingService(db, config, "")
    decision = service.check("usage_pattern")
    assert decision["decision"] == "no_trigger" and "no drift check" in decision["reason"]


@pytest.mark.parametrize(
    "changes",
    [
        {"window_days": "7"},
        {"enabled": 1},
        {"window_days": True},
        {"cooldown_hours": 1e300},
        {"cooldown_hours": float("nan")},
        {"training_days": 10**20},
        {"after_gate": 5},
    ],
)
def test_a_policy_the_api_would_refuse_is_refused_by_a_direct_call_and_nothing_is_stored(
    db: sqlite_utils.Database, config: CloudConfig, changes: dict
):
    """The API's schema is not the only guard: the CLI and scripts call the service, whose later checks need numbers."""
    service = RetrainingService(db, config, "")
    before = service.policies.get("anomaly")
    with pytest.raises(InvalidPolicy):
        service.set_policy("anomaly", changes)
    assert service.policies.get("anomaly") == before
    assert count(db, "retraining_policies") == 0


def test_the_retraining_cli(config: CloudConfig):
    runner = CliRunner()
    data = ["--data-dir", str(config.data_dir)]

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, [*args, *data], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    assert '"enabled": false' in run("retraining", "policy", "anomaly")
    assert '"enabled": true' in run("retraining", "enable", "anomaly")
    changed = json.loads(run("retraining", "policy", "anomaly", "--set", "cooldown_hours=6", "--set", "feedback=no"))
    assert changed["cooldown_hours"] == 6.0 and changed["feedback"] is False and changed["enabled"] is True
    assert "NAME=VALUE" in run("retraining", "policy", "anomaly", "--set", "colour=blue", code=2)
    assert "alpha must be" in run("retraining", "policy", "anomaly", "--set", "alpha=0.9", code=1)
    assert "cooldown_hours must be a finite number" in run(
        "retraining", "policy", "anomaly", "--set", "cooldown_hours=inf", code=1
    )
    assert "experiment_mode must be split or shadow" in run(
        "retraining", "policy", "anomaly", "--set", "experiment_mode=both", code=1
    )
    assert '"experiment_mode": "shadow"' in run("retraining", "policy", "anomaly", "--set", "experiment_mode=shadow")
    assert "no_trigger" in run("retraining", "check", "anomaly")
    decisions = run("retraining", "decisions", "--model", "anomaly").splitlines()
    assert decisions[0].split()[:4] == ["AT", "MODEL", "TRIGGER", "DECISION"]
    assert ["anomaly", "check", "no_trigger"] in [line.split()[1:4] for line in decisions]


def test_check_as_of_a_time_before_the_data_says_where_the_rows_are(config: CloudConfig, span):
    result = CliRunner().invoke(
        main, ["retraining", "check", "anomaly", "--as-of", "2020-01-01", "--data-dir", str(config.data_dir)]
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("no_trigger: ")
    assert f"the stored feature windows ({iso(span[0])} to " in result.stderr
    assert "lie after it: --as-of data looks there" in result.stderr
    [decision] = RetrainingService(open_database(config.database_url), config).decisions("anomaly")
    assert decision["at"].startswith("2020-01-01")  # checked as of the time asked, not the clock
