"""Training runs as rows: queued by anyone, claimed by one worker, with progress, a log and a clear end.

A run moves ``queued → running → succeeded | failed | cancelled``. Claiming is one conditional UPDATE, so two
workers (or a worker and ``iotsphere train run --now``) never run the same one. A run left ``running`` by a
worker process on this host that is gone is failed with that reason when a worker starts, never left running
forever.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlite_utils

from cloud.data import training as stored
from cloud.data.connections import connection_of, write_transaction
from cloud.errors import NotFound, Refused
from cloud.storage import iso

#: the latest share of a run's rows held out to evaluate its challenger
DEFAULT_HOLDOUT_FRACTION = 0.25


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class UnknownRun(NotFound, LookupError):
    """No training run has this id."""


class RunRefused(Refused, ValueError):
    """The run cannot change that way (e.g. cancelling one that already started)."""


@dataclass(frozen=True)
class TrainingRun:
    run_id: str
    model_name: str
    status: RunStatus
    requested_by: str
    requested_at: str
    start_date: str
    end_date: str
    options: dict[str, Any]
    schedule_id: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    stage: str | None = None
    progress: float = 0.0
    dataset_id: str | None = None
    model_version: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TrainingRun:
        return cls(
            run_id=row["run_id"],
            model_name=row["model_name"],
            status=RunStatus(row["status"]),
            requested_by=row["requested_by"],
            requested_at=row["requested_at"],
            start_date=row["start_date"],
            end_date=row["end_date"],
            options=json.loads(row["options_json"] or "{}"),
            schedule_id=row["schedule_id"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            stage=row["stage"],
            progress=row["progress"] or 0.0,
            dataset_id=row["dataset_id"],
            model_version=row["model_version"],
            result=json.loads(row["result_json"]) if row["result_json"] else None,
            error=row["error"],
        )


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _is_gone(worker: str) -> bool:
    """True when ``worker`` ("host:pid") names a process of this host that has exited."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _now() -> str:
    return iso(datetime.now(UTC))


class RunStore:
    """The ``training_runs`` and ``training_run_logs`` tables."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def create(
        self,
        model_name: str,
        start: datetime,
        end: datetime,
        requested_by: str,
        options: dict[str, Any] | None = None,
        schedule_id: int | None = None,
    ) -> TrainingRun:
        row = {
            "run_id": uuid.uuid4().hex[:16],
            "model_name": model_name,
            "status": RunStatus.QUEUED.value,
            "requested_by": requested_by,
            "requested_at": _now(),
            "schedule_id": schedule_id,
            "start_date": iso(start),
            "end_date": iso(end),
            "options_json": json.dumps(options or {}, sort_keys=True),
            "progress": 0.0,
        }
        with write_transaction(self.db) as connection:  # part of a caller's transaction if one is open
            stored.add_run(connection, row)
        return self.get(row["run_id"])

    def get(self, run_id: str) -> TrainingRun:
        row = stored.find_run(connection_of(self.db), run_id)
        if row is None:
            raise UnknownRun(f"no training run {run_id!r}")
        return TrainingRun.from_row(row)

    def list(
        self, model_name: str | None = None, status: RunStatus | None = None, limit: int = 50
    ) -> list[TrainingRun]:
        """Newest first."""
        rows = stored.runs(connection_of(self.db), model_name, RunStatus(status).value if status else None, limit)
        return [TrainingRun.from_row(row) for row in rows]

    def claim(self, run_id: str | None = None) -> TrainingRun | None:
        """Mark the oldest queued run (or ``run_id``) running and return it; None if there is none to claim."""
        changes = {"status": RunStatus.RUNNING.value, "started_at": _now(), "worker": _worker_id(), "stage": "starting"}
        with write_transaction(self.db) as connection:
            claimed = stored.claim_run(connection, RunStatus.QUEUED.value, changes, run_id)
        return self.get(claimed) if claimed else None

    def log(self, run_id: str, message: str) -> None:
        with write_transaction(self.db) as connection:
            stored.add_run_log(connection, run_id, _now(), message)

    def logs(self, run_id: str, after_id: int = 0) -> list[dict]:
        self.get(run_id)
        return [dict(row) for row in stored.run_logs(connection_of(self.db), run_id, after_id)]

    def progress(self, run_id: str, stage: str, fraction: float, **fields: Any) -> None:
        with write_transaction(self.db) as connection:
            stored.update_run(connection, run_id, {"stage": stage, "progress": round(fraction, 3), **fields})

    def finish(self, run_id: str, model_version: str, result: dict[str, Any]) -> None:
        with write_transaction(self.db) as connection:
            stored.update_run(
                connection,
                run_id,
                {
                    "status": RunStatus.SUCCEEDED.value,
                    "finished_at": _now(),
                    "stage": "done",
                    "progress": 1.0,
                    "model_version": model_version,
                    "result_json": json.dumps(result, sort_keys=True),
                },
            )

    def fail(self, run_id: str, error: str) -> None:
        with write_transaction(self.db) as connection:
            at = _now()
            stored.update_run(connection, run_id, {"status": RunStatus.FAILED.value, "finished_at": at, "error": error})
            stored.add_run_log(connection, run_id, at, f"failed: {error}")

    def cancel(self, run_id: str) -> TrainingRun:
        """Cancel a queued run; a running one cannot be stopped half-way (it would leave half a version)."""
        changes = {"status": RunStatus.CANCELLED.value, "finished_at": _now()}
        with write_transaction(self.db) as connection:
            changed = stored.update_run_if(connection, run_id, RunStatus.QUEUED.value, changes)
        run = self.get(run_id)
        if not changed:
            raise RunRefused(f"training run {run_id} is {run.status.value}: only a queued run can be cancelled")
        return run

    def fail_interrupted(self) -> list[str]:
        """Fail runs left ``running`` by a worker process of this host that no longer exists; return their ids."""
        running = stored.runs_with_status(connection_of(self.db), RunStatus.RUNNING.value)
        stale = [row["run_id"] for row in running if _is_gone(row["worker"] or "")]
        for run_id in stale:
            self.fail(run_id, "interrupted: the training worker stopped before the run finished; trigger it again")
        return stale
