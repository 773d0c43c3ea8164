"""Rollouts as stored (migration 13): rows in, typed records out, and compare-and-set status changes.

Status changes are conditional UPDATEs (``... WHERE status = ?``): when the worker and an operator act on the
same rollout at once, exactly one of them makes each transition and the other sees it already made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlite_utils

from cloud.data import rollouts as stored
from cloud.data.connections import connection_of, write_transaction
from cloud.errors import NotFound
from cloud.rollouts.plan import rollout_order
from cloud.storage import from_iso, iso


class RolloutStatus(StrEnum):
    RUNNING = "running"
    HALTED = "halted"
    ROLLED_BACK = "rolled_back"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


LIVE = (RolloutStatus.RUNNING, RolloutStatus.HALTED)


class StageStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"


class UnknownRollout(NotFound, LookupError):
    """No rollout with that id."""


@dataclass(frozen=True)
class StageRecord:
    index: int
    percent: float
    max_failure_share: float
    deadline: timedelta
    status: StageStatus
    started_at: datetime | None
    deadline_at: datetime | None
    finished_at: datetime | None
    gateway_ids: list[str]


@dataclass(frozen=True)
class RolloutRecord:
    rollout_id: int
    model_name: str
    version: str
    #: '' = every device type without its own production version (the registry's GENERAL scope)
    device_type: str
    status: RolloutStatus
    plan: dict[str, Any]
    created_by: str
    created_at: datetime
    reason: str
    updated_at: datetime
    finished_at: datetime | None
    outcome: str | None
    stages: list[StageRecord]

    def current_stage(self) -> StageRecord | None:
        """The stage in flight or next to start; None once every stage passed."""
        return next((s for s in self.stages if s.status is not StageStatus.PASSED), None)


def _time(value: str | None) -> datetime | None:
    return from_iso(value) if value else None


def now_text(now: datetime | None = None) -> str:
    return iso(now or datetime.now(UTC))


def create(
    db: sqlite_utils.Database,
    model_name: str,
    version: str,
    device_type: str,
    plan: dict[str, Any],
    stages: list[tuple[float, float, list[str]]],
    actor: str,
    reason: str,
    now: datetime,
) -> int:
    """Store a running rollout with its stages (percent, failure share, gateways); IntegrityError if one is live."""
    at = now_text(now)
    row = {
        "model_name": model_name,
        "version": version,
        "device_type": device_type,
        "status": RolloutStatus.RUNNING.value,
        "plan_json": json.dumps(plan),
        "created_by": actor,
        "created_at": at,
        "reason": reason,
        "updated_at": at,
    }
    with write_transaction(db) as connection:
        rollout_id = stored.add_rollout(connection, row)
        stored.add_stages(
            connection,
            [
                {
                    "rollout_id": rollout_id,
                    "stage_index": index,
                    "percent": percent,
                    "max_failure_share": share,
                    "deadline_s": plan["stage_deadline_s"],
                    "status": StageStatus.PENDING.value,
                }
                for index, (percent, share, _) in enumerate(stages)
            ],
        )
        stored.add_gateways(
            connection,
            [
                {"rollout_id": rollout_id, "gateway_id": g, "stage_index": index}
                for index, (_, _, gateway_ids) in enumerate(stages)
                for g in gateway_ids
            ],
        )
    return rollout_id


def load(db: sqlite_utils.Database, rollout_id: int) -> RolloutRecord:
    connection = connection_of(db)
    row = stored.find_rollout(connection, rollout_id)
    if row is None:
        raise UnknownRollout(f"no rollout #{rollout_id}")
    gateways: dict[int, list[str]] = {}
    for g in gateway_rows(db, rollout_id):
        gateways.setdefault(g["stage_index"], []).append(g["gateway_id"])
    stages = [
        StageRecord(
            index=s["stage_index"],
            percent=s["percent"],
            max_failure_share=s["max_failure_share"],
            deadline=timedelta(seconds=s["deadline_s"]),
            status=StageStatus(s["status"]),
            started_at=_time(s["started_at"]),
            deadline_at=_time(s["deadline_at"]),
            finished_at=_time(s["finished_at"]),
            gateway_ids=gateways.get(s["stage_index"], []),
        )
        for s in stored.stages(connection, rollout_id)
    ]
    return RolloutRecord(
        rollout_id=row["rollout_id"],
        model_name=row["model_name"],
        version=row["version"],
        device_type=row["device_type"],
        status=RolloutStatus(row["status"]),
        plan=json.loads(row["plan_json"]),
        created_by=row["created_by"],
        created_at=from_iso(row["created_at"]),
        reason=row["reason"],
        updated_at=from_iso(row["updated_at"]),
        finished_at=_time(row["finished_at"]),
        outcome=row["outcome"],
        stages=stages,
    )


def list_ids(
    db: sqlite_utils.Database, status: RolloutStatus | None = None, model_name: str | None = None
) -> list[int]:
    """Rollout ids, newest first."""
    return stored.rollout_ids(connection_of(db), status and status.value, model_name)


def set_status(
    db: sqlite_utils.Database,
    rollout_id: int,
    to: RolloutStatus,
    from_: tuple[RolloutStatus, ...],
    now: datetime,
    outcome: str | None = None,
) -> bool:
    """Move the rollout to ``to`` if it is in one of ``from_``; False if another caller moved it first. The outcome
    is kept unless a new one is given."""
    changes: dict[str, Any] = {
        "status": to.value,
        "updated_at": now_text(now),
        "finished_at": now_text(now) if to not in LIVE else None,
    }
    if outcome is not None:
        changes["outcome"] = outcome
    with write_transaction(db) as connection:
        return stored.update_rollout_if(connection, rollout_id, [s.value for s in from_], changes)


def set_stage(
    db: sqlite_utils.Database,
    rollout_id: int,
    index: int,
    to: StageStatus,
    from_: StageStatus,
    now: datetime,
    deadline_at: datetime | None = None,
) -> bool:
    """Move a stage on if it is still ``from_``; starting it sets its start and deadline, ending it its end."""
    changes: dict[str, Any] = {"status": to.value}
    if to is StageStatus.RUNNING:
        changes |= {"started_at": now_text(now), "deadline_at": now_text(deadline_at)}
    else:
        changes["finished_at"] = now_text(now)
    with write_transaction(db) as connection:
        return stored.update_stage(connection, rollout_id, index, changes, from_.value)


def restart_deadline(db: sqlite_utils.Database, rollout_id: int, index: int, deadline_at: datetime) -> None:
    with write_transaction(db) as connection:
        stored.update_stage(connection, rollout_id, index, {"deadline_at": now_text(deadline_at)})


def record_gateways(db: sqlite_utils.Database, rollout_id: int, updates: dict[str, dict[str, Any]]) -> None:
    """Per gateway: its previous version, or the sequence of the document directing or rolling it back."""
    with write_transaction(db) as connection:
        for gateway_id, changes in updates.items():
            stored.update_gateway(connection, rollout_id, gateway_id, changes)


def gateway_rows(db: sqlite_utils.Database, rollout_id: int) -> list[dict[str, Any]]:
    """The rollout's gateways by stage, each stage in rollout order (the order its gateways were directed)."""
    rows = [dict(row) for row in stored.gateways(connection_of(db), rollout_id)]
    position = {gateway_id: n for n, gateway_id in enumerate(rollout_order([row["gateway_id"] for row in rows]))}
    return sorted(rows, key=lambda row: (row["stage_index"], position[row["gateway_id"]]))


def decide(
    db: sqlite_utils.Database,
    rollout_id: int,
    stage_index: int | None,
    actor: str,
    decision: str,
    reason: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> int:
    """Keep a decision and why it was taken, in the order they happened; return its id."""
    row = {
        "rollout_id": rollout_id,
        "stage_index": stage_index,
        "at": now_text(now),
        "actor": actor,
        "decision": decision,
        "reason": reason,
        "details_json": json.dumps(details or {}),
    }
    with write_transaction(db) as connection:
        return stored.add_decision(connection, row)


def decisions(db: sqlite_utils.Database, rollout_id: int) -> list[dict[str, Any]]:
    rows = [dict(row) for row in stored.decisions(connection_of(db), rollout_id)]
    for row in rows:
        row["details"] = json.loads(row.pop("details_json"))
    return rows
