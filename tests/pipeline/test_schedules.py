"""Training schedules: daily/weekly/monthly/cron through croniter, persisted, fired once, run by the worker."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlite_utils

from cloud.config import CloudConfig
from cloud.pipeline.runs import RunStatus
from cloud.pipeline.schedules import InvalidSchedule, cron_expression
from cloud.pipeline.training import ModelTrainingPipeline
from cloud.pipeline.worker import RetrainingJobs, TrainingWorker
from cloud.storage import iso, open_database
from tests.rows import update_rows

NOW = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("schedule", "cron"),
    [("daily", "@daily"), ("Weekly", "@weekly"), ("monthly", "@monthly"), ("0 3  * * 1", "0 3 * * 1")],
)
def test_named_schedules_and_cron_expressions_are_accepted(schedule: str, cron: str):
    assert cron_expression(schedule) == cron


@pytest.mark.parametrize("schedule", ["hourly-ish", "61 * * * *", "* * * *", "0 3 * * 1 2026", ""])
def test_anything_else_is_refused_with_the_accepted_forms(schedule: str):
    with pytest.raises(InvalidSchedule, match="daily, weekly, monthly or a five-field cron"):
        cron_expression(schedule)


def test_next_fire_times_follow_the_schedule(db: sqlite_utils.Database, config: CloudConfig):
    pipeline = ModelTrainingPipeline(db, config, passphrase="")
    schedules = pipeline.schedules
    assert schedules.add("anomaly", "daily", "t", now=NOW).next_run_at == iso(datetime(2026, 11, 26, tzinfo=UTC))
    assert schedules.add("anomaly", "weekly", "t", now=NOW).next_run_at == iso(datetime(2026, 11, 29, tzinfo=UTC))
    assert schedules.add("anomaly", "monthly", "t", now=NOW).next_run_at == iso(datetime(2026, 12, 1, tzinfo=UTC))
    monday = schedules.add("anomaly", "0 3 * * 1", "t", now=NOW)
    assert monday.next_run_at == iso(datetime(2026, 11, 30, 3, tzinfo=UTC))


def test_a_due_schedule_queues_one_run_however_many_times_it_was_missed_and_survives_a_restart(
    db: sqlite_utils.Database, config: CloudConfig
):
    pipeline = ModelTrainingPipeline(db, config, passphrase="")
    made = pipeline.schedule_regular_training("usage_pattern", "daily", window_days=30, actor="ops")
    fire = datetime.fromisoformat(made.next_run_at.replace("Z", "+00:00"))
    assert pipeline.queue_due_schedules(fire - timedelta(seconds=1)) == []
    db.close()

    reopened = open_database(config.database_url)  # a restart: only the file remains
    try:
        pipeline = ModelTrainingPipeline(reopened, config, passphrase="")
        three_days_late = fire + timedelta(days=3, hours=1)
        (run,) = pipeline.queue_due_schedules(three_days_late)
        assert run.status == RunStatus.QUEUED and run.schedule_id == made.schedule_id
        assert run.end_date == iso(fire) and run.start_date == iso(fire - timedelta(days=30))
        assert run.requested_by == f"schedule:{made.schedule_id}"
        assert pipeline.queue_due_schedules(three_days_late) == []
        (stored,) = pipeline.schedules.list()
        assert stored.last_run_id == run.run_id and stored.last_run_at == iso(fire)
        assert stored.next_run_at == iso(
            datetime.combine(three_days_late.date() + timedelta(days=1), datetime.min.time(), UTC)
        )
    finally:
        reopened.close()


def test_the_workers_run_what_a_schedule_queues(
    db: sqlite_utils.Database, config: CloudConfig, span: tuple[datetime, datetime]
):
    pipeline = ModelTrainingPipeline(db, config, passphrase="")
    window = (span[1] - span[0]).days + 1
    made = pipeline.schedule_regular_training("anomaly", "daily", window_days=window, options={"release": False})
    # it was due at the end of the fleet's data
    update_rows(db, "training_schedules", {"schedule_id": made.schedule_id}, {"next_run_at": iso(span[1])})

    workers = [
        RetrainingJobs(config, poll_seconds=0.2, passphrase=""),
        TrainingWorker(config, poll_seconds=0.2, passphrase=""),
    ]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            runs = pipeline.runs.list()
            if runs and runs[0].status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
                break
            time.sleep(0.5)
    finally:
        for worker in workers:
            worker.stop()
    (run,) = pipeline.runs.list()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.schedule_id == made.schedule_id and run.model_version == "1"
