"""A rollout as operators read it (API and CLI alike): stages, each gateway's standing, decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cloud.rollouts import store
from cloud.rollouts.engine import StagedRollouts
from cloud.rollouts.store import RolloutRecord


def rollout_view(rollouts: StagedRollouts, record: RolloutRecord, now: datetime | None = None) -> dict[str, Any]:
    """JSON-able; the stage in flight carries its live verdict and each of its gateways' deployment state."""
    verdict = rollouts.progress(record, now or datetime.now(UTC))
    standing = {g.gateway_id: g for g in verdict.gateways} if verdict else {}
    gateways = {row["gateway_id"]: row for row in store.gateway_rows(rollouts.db, record.rollout_id)}
    stages = []
    for stage in record.stages:
        rows = []
        for gateway_id in stage.gateway_ids:
            row, live = gateways[gateway_id], standing.get(gateway_id)
            rows.append(
                {
                    "gateway_id": gateway_id,
                    "previous_version": row["previous_version"],
                    "directed_sequence": row["directed_sequence"],
                    "rollback_sequence": row["rollback_sequence"],
                    "state": live.state if live else None,
                    "reason": live.reason if live else None,
                }
            )
        stages.append(
            {
                "index": stage.index,
                "percent": stage.percent,
                "max_failure_share": stage.max_failure_share,
                "deadline_s": stage.deadline.total_seconds(),
                "status": stage.status.value,
                "started_at": stage.started_at,
                "deadline_at": stage.deadline_at,
                "finished_at": stage.finished_at,
                "gateways": rows,
            }
        )
    return {
        "rollout_id": record.rollout_id,
        "model_name": record.model_name,
        "version": record.version,
        "device_type": record.device_type or None,
        "status": record.status.value,
        "plan": record.plan,
        "created_by": record.created_by,
        "created_at": record.created_at,
        "reason": record.reason,
        "updated_at": record.updated_at,
        "finished_at": record.finished_at,
        "outcome": record.outcome,
        "progress": verdict.summary() if verdict else None,
        "stages": stages,
        "decisions": store.decisions(rollouts.db, record.rollout_id),
    }
