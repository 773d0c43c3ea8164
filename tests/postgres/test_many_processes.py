"""Many cloud processes against one PostgreSQL (issue 13 §3), as processes started by their real commands:
two ``iotsphere train worker`` processes share one queue of 20 runs, each run executed exactly once; two
``iotsphere cloud serve --role jobs`` processes run each periodic job in one of them, and when that one is killed
(SIGKILL: no goodbye) the other takes the jobs over within ``LEADER_RETRY_SECONDS`` and a margin."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.config import CloudConfig
from cloud.data import training
from cloud.data.connections import connection_of, write_transaction
from cloud.pipeline.runs import RunStatus
from cloud.pipeline.training import ModelTrainingPipeline
from cloud.storage import iso, open_database
from cloud.workers import LEADER_RETRY_SECONDS
from tests.postgres.test_end_to_end import schema  # noqa: F401 (the fixture)
from tests.postgres_run import field_key, schema_url
from tests.private_broker import free_port

pytestmark = pytest.mark.postgres

RUNS = 20
#: what a loaded 2-core machine may add to the retry interval: the new leader's start and its first pass
TAKEOVER_MARGIN_SECONDS = 10.0
CLI = [sys.executable, "-c", "from iotsphere.cli import main; main()"]


class _Process:
    """A started command whose stderr lines are read as they come (the log lines say who leads)."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.text: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.text.append(line)
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 60) -> float:
        """Block until a line matches; the monotonic time it was read."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.popen.poll() is not None and self.lines.empty():
                    break
                continue
            if re.search(pattern, line):
                return time.monotonic()
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n{''.join(self.text)[-3000:]}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
        self.popen.wait(30)


@pytest.fixture
def cloud(tmp_path: Path, schema: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[CloudConfig, dict]]:  # noqa: F811
    """A cloud in the test's own schema, and the environment its processes get."""
    env = {"IOTSPHERE_DATABASE_URL": schema_url(schema), "IOTSPHERE_FIELD_KEY": field_key()}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("IOTSPHERE_KEY_PASSPHRASE", raising=False)
    config = CloudConfig(data_dir=tmp_path / "cloud")
    yield config, {**os.environ, "IOTSPHERE_DATA_DIR": str(config.data_dir)}


def test_two_worker_processes_run_each_of_20_queued_runs_exactly_once(cloud: tuple[CloudConfig, dict]) -> None:
    config, env = cloud
    db = open_database(config.database_url)
    pipeline = ModelTrainingPipeline(db, config, passphrase="")
    end = datetime.now(UTC).replace(microsecond=0)
    command = [*CLI, "train", "worker", "--metrics-address", "off", "--poll-every", "0.1"]
    workers = [_Process(command, env) for _ in range(2)]
    try:
        for worker in workers:  # both looking at the queue before it fills, so neither finds it empty by starting late
            worker.wait_for("training worker ready")
        queued = {
            pipeline.trigger_model_training("anomaly", end - timedelta(days=30), end, {"release": False}).run_id
            for _ in range(RUNS)
        }
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            runs = pipeline.runs.list(limit=RUNS + 1)
            if all(run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED) for run in runs):
                break
            time.sleep(0.2)
    finally:
        for worker in workers:
            worker.stop()
    runs = pipeline.runs.list(limit=RUNS + 1)
    assert {run.run_id for run in runs} == queued
    # no training data here: each run fails at its dataset, which is a run executed (claimed, logged, ended)
    assert {run.status for run in runs} == {RunStatus.FAILED}, [(run.run_id, run.status, run.error) for run in runs]
    for run in runs:  # executed once: one start and one end in its log
        messages = [line["message"] for line in pipeline.runs.logs(run.run_id)]
        assert sum(message.startswith("failed:") for message in messages) == 1, messages
    claimed_by = [row["worker"] for row in training.runs(connection_of(db), limit=RUNS + 1)]
    pids = [worker.popen.pid for worker in workers]
    by_worker = {pid: sum(worker.endswith(f":{pid}") for worker in claimed_by) for pid in pids}
    print(f"runs claimed per worker process: {sorted(by_worker.values())}")
    assert sum(by_worker.values()) == RUNS
    assert all(by_worker.values()), f"one worker took every run: {by_worker}"
    db.close()


def test_each_periodic_job_runs_in_one_process_and_another_takes_over_when_it_is_killed(
    cloud: tuple[CloudConfig, dict],
) -> None:
    config, env = cloud
    open_database(config.database_url).close()  # migrated before the processes race to

    def jobs() -> _Process:
        return _Process([*CLI, "cloud", "serve", "--role", "jobs", "--port", str(free_port())], env)

    first = jobs()
    second: _Process | None = None
    try:
        first.wait_for(r"leading 'retraining'")
        second = jobs()
        second.wait_for(r"following \(another process leads\) 'retraining'")
        db = open_database(config.database_url)
        pipeline = ModelTrainingPipeline(db, config, passphrase="")
        made = pipeline.schedule_regular_training("anomaly", "daily", options={"release": False})

        first.popen.send_signal(signal.SIGKILL)
        first.popen.wait(10)
        killed = time.monotonic()
        due = iso(datetime.now(UTC) - timedelta(minutes=1))
        with write_transaction(db) as connection:  # due now: only a leader of the retraining jobs queues it
            assert training.advance_schedule(connection, made.schedule_id, made.next_run_at, due)
        took_over = second.wait_for(r"leading 'retraining'", timeout=LEADER_RETRY_SECONDS + 30)
        deadline = time.monotonic() + LEADER_RETRY_SECONDS + 30
        while not pipeline.runs.list() and time.monotonic() < deadline:
            time.sleep(0.1)
        queued = time.monotonic()
        (run,) = pipeline.runs.list()
        assert run.schedule_id == made.schedule_id
        db.close()
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert took_over - killed <= LEADER_RETRY_SECONDS + TAKEOVER_MARGIN_SECONDS
    assert queued - killed <= LEADER_RETRY_SECONDS + TAKEOVER_MARGIN_SECONDS
    led = "".join(second.text)
    for job in ("director-publisher", "alerts"):  # every other job of the role changed hands too
        assert f"leading '{job}'" in led, led[-3000:]
    print(f"after the kill: leader lock taken {took_over - killed:.1f} s, the due run queued {queued - killed:.1f} s")
