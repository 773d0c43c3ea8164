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
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlite_utils

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
    def from_row(cls, row: dict) -> TrainingRun:
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
        self.db["training_runs"].insert(row)  # atomic alone, and part of a caller's transaction if one is open
        return self.get(row["run_id"])

    def get(self, run_id: str) -> TrainingRun:
        rows = list(self.db["training_runs"].rows_where("run_id = ?", [run_id]))
        if not rows:
            raise UnknownRun(f"no training run {run_id!r}")
        return TrainingRun.from_row(rows[0])

    def list(
        self, model_name: str | None = None, status: RunStatus | None = None, limit: int = 50
    ) -> list[TrainingRun]:
        """Newest first."""
        clauses, args = [], []
        if model_name:
            clauses.append("model_name = ?")
            args.append(model_name)
        if status:
            clauses.append("status = ?")
            args.append(RunStatus(status).value)
        rows = self.db["training_runs"].rows_where(
            " AND ".join(clauses) or None, args, order_by="requested_at DESC, rowid DESC", limit=limit
        )
        return [TrainingRun.from_row(row) for row in rows]

    def claim(self, run_id: str | None = None) -> TrainingRun | None:
        """Mark the oldest queued run (or ``run_id``) running and return it; None if there is none to claim."""
        with self.db.conn:
            if run_id is None:
                found = self.db.execute(
                    "SELECT run_id FROM training_runs WHERE status = ? ORDER BY requested_at, rowid LIMIT 1",
                    [RunStatus.QUEUED.value],
                ).fetchone()
                if found is None:
                    return None
                run_id = found[0]
            claimed = self.db.execute(
                "UPDATE training_runs SET status = ?, started_at = ?, worker = ?, stage = 'starting'"
                " WHERE run_id = ? AND status = ?",
                [RunStatus.RUNNING.value, _now(), _worker_id(), run_id, RunStatus.QUEUED.value],
            ).rowcount
        return self.get(run_id) if claimed else None

    def log(self, run_id: str, message: str) -> None:
        with self.db.conn:
            self.db["training_run_logs"].insert({"run_id": run_id, "at": _now(), "message": message})

    def logs(self, run_id: str, after_id: int = 0) -> list[dict]:
        self.get(run_id)
        return list(
            self.db["training_run_logs"].rows_where(
                "run_id = ? AND id > ?", [run_id, after_id], order_by="id", select="id, at, message"
            )
        )

    def progress(self, run_id: str, stage: str, fraction: float, **fields: Any) -> None:
        with self.db.conn:
            self.db["training_runs"].update(run_id, {"stage": stage, "progress": round(fraction, 3), **fields})

    def finish(self, run_id: str, model_version: str, result: dict[str, Any]) -> None:
        with self.db.conn:
            self.db["training_runs"].update(
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
        with self.db.conn:
            self.db["training_runs"].update(
                run_id, {"status": RunStatus.FAILED.value, "finished_at": _now(), "error": error}
            )
        self.log(run_id, f"failed: {error}")

    def cancel(self, run_id: str) -> TrainingRun:
        """Cancel a queued run; a running one cannot be stopped half-way (it would leave half a version)."""
        changed = self.db.execute(
            "UPDATE training_runs SET status = ?, finished_at = ? WHERE run_id = ? AND status = ?",
            [RunStatus.CANCELLED.value, _now(), run_id, RunStatus.QUEUED.value],
        ).rowcount
        run = self.get(run_id)
        if not changed:
            raise RunRefused(f"training run {run_id} is {run.status.value}: only a queued run can be cancelled")
        return run

    def fail_interrupted(self) -> list[str]:
        """Fail runs left ``running`` by a worker process of this host that no longer exists; return their ids."""
        running = self.db.execute("SELECT run_id, worker FROM training_runs WHERE status = ?", ["running"])
        stale = [run_id for run_id, worker in running if _is_gone(worker or "")]
        for run_id in stale:
            self.fail(run_id, "interrupted: the training worker stopped before the run finished; trigger it again")
        return stale
