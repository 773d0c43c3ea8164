"""Where alerts come from: each source reads one service and names the conditions it finds now.

A source returns ``Finding``s, each with a fingerprint that stays the same while the condition does (a training
run's id, a drift check's id, a gateway and the time it fell silent), so the inbox raises each once. Sources of a
*state* (a rollout halted, a gateway offline) say so with ``clears``: when the state ends the finding is gone, and
the inbox resolves its alert. The others are events: their alert stays until a person resolves it.
Sources read through the services, never the tables of another owner.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlite_utils

from cloud.data import fleet
from cloud.data.connections import connection_of
from cloud.data.times import iso

if TYPE_CHECKING:  # the settings load only when a scan runs, not for `iotsphere alerts --help`
    from shared.settings import Settings

#: at most this many gateways are named offline per pass: a site-wide outage is one page of alerts, not thousands
MAX_OFFLINE_GATEWAYS = 100


@dataclass(frozen=True)
class Finding:
    fingerprint: str
    kind: str
    severity: str
    subject: str
    summary: str
    started_at: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    kind: str
    #: True: the condition is a state, and its alert resolves itself when the state ends
    clears: bool
    find: Callable[[sqlite_utils.Database, datetime, Settings], list[Finding]]


def drift_found(db: sqlite_utils.Database, now: datetime, settings: Settings) -> list[Finding]:
    """Drift checks that found drift, recorded within the lookback."""
    from cloud.monitoring.drift import drift_history
    from cloud.registry import MLModelRegistry

    since = iso(now - timedelta(days=settings.alert_lookback_days))
    names = sorted({row["model_name"] for row in MLModelRegistry(db).list_versions()})
    found = []
    for name in names:
        for check in drift_history(db, name, limit=50):
            if check["status"] != "drift" or check["checked_at"] < since:
                continue
            drifted = check.get("drifted") or []
            scope = check.get("device_type") or "every device type"
            found.append(
                Finding(
                    fingerprint=f"drift:{check['id']}",
                    kind="drift_found",
                    severity="warning",
                    subject=f"{name} {check['model_version']} ({scope})",
                    summary=f"drift in {len(drifted)} feature(s): {', '.join(drifted[:5]) or 'performance'}",
                    started_at=check["checked_at"],
                    labels={"model": name, "version": str(check["model_version"])},
                )
            )
    return found


def rollouts_halted(db: sqlite_utils.Database, now: datetime, settings: Settings) -> list[Finding]:
    """Rollouts halted now (a stage failed its threshold or missed its deadline, or an operator halted it)."""
    from cloud.rollouts import store
    from cloud.rollouts.store import RolloutStatus

    found = []
    for rollout_id in store.list_ids(db, RolloutStatus.HALTED):
        rollout = store.load(db, rollout_id)
        halted_at = iso(rollout.updated_at)
        found.append(
            Finding(
                fingerprint=f"rollout-halted:{rollout_id}:{halted_at}",
                kind="rollout_halted",
                severity="critical",
                subject=f"rollout {rollout_id}: {rollout.model_name} {rollout.version}",
                summary=rollout.outcome or "halted",
                started_at=halted_at,
                labels={"model": rollout.model_name, "version": rollout.version},
            )
        )
    return found


def gateways_offline(db: sqlite_utils.Database, now: datetime, settings: Settings) -> list[Finding]:
    """Gateways silent longer than the threshold (but heard from within the lookback)."""
    since = iso(now - timedelta(days=settings.alert_lookback_days))
    before = iso(now - timedelta(seconds=settings.alert_gateway_offline_after_s))
    rows = fleet.gateways_silent(connection_of(db), since, before, MAX_OFFLINE_GATEWAYS)
    return [
        Finding(
            fingerprint=f"gateway-offline:{row['gateway_id']}:{row['last_seen']}",
            kind="gateway_offline",
            severity="warning",
            subject=f"gateway {row['gateway_id']}",
            summary=f"silent since {row['last_seen']}",
            started_at=row["last_seen"],
            labels={"gateway": row["gateway_id"]},
        )
        for row in rows
    ]


def experiments_concluded(db: sqlite_utils.Database, now: datetime, settings: Settings) -> list[Finding]:
    """A/B tests concluded within the lookback: a decision someone should read."""
    from cloud.experiments.store import ExperimentStore, Status

    since = iso(now - timedelta(days=settings.alert_lookback_days))
    return [
        Finding(
            fingerprint=f"experiment-concluded:{experiment['experiment_id']}",
            kind="experiment_concluded",
            severity="info",
            subject=f"experiment {experiment['experiment_id']}: {experiment['model_name']}",
            summary=f"{experiment.get('decision') or 'concluded'}: {experiment.get('reason') or ''}".strip(": "),
            started_at=experiment["concluded_at"],
            labels={"model": experiment["model_name"]},
        )
        for experiment in ExperimentStore(db).list(Status.CONCLUDED)
        if (experiment.get("concluded_at") or "") >= since
    ]


def training_failed(db: sqlite_utils.Database, now: datetime, settings: Settings) -> list[Finding]:
    """Training runs that failed within the lookback."""
    from cloud.pipeline.runs import RunStatus, RunStore

    since = iso(now - timedelta(days=settings.alert_lookback_days))
    return [
        Finding(
            fingerprint=f"training-failed:{run.run_id}",
            kind="training_failed",
            severity="warning",
            subject=f"training run {run.run_id}: {run.model_name}",
            summary=(run.error or "failed").splitlines()[0][:300],
            started_at=run.finished_at or run.requested_at,
            labels={"model": run.model_name},
        )
        for run in RunStore(db).list(status=RunStatus.FAILED, limit=200)
        if (run.finished_at or run.requested_at) >= since
    ]


def security_events(db: sqlite_utils.Database, now: datetime, settings: Settings) -> list[Finding]:
    """Director documents a gateway was sent that the cloud never issued to it."""
    from cloud.security_events import list_events

    return [
        Finding(
            fingerprint=f"security:{event.gateway_id}:{event.document_digest}",
            kind="security_event",
            severity="critical",
            subject=f"gateway {event.gateway_id}",
            summary=f"{event.finding}: a director document the cloud never issued to it ({event.kind})",
            started_at=iso(event.first_seen_at),
            labels={"gateway": event.gateway_id},
        )
        for event in list_events(db, since=now - timedelta(days=settings.alert_lookback_days), limit=1000)
    ]


SOURCES = (
    Source("drift_found", False, drift_found),
    Source("rollout_halted", True, rollouts_halted),
    Source("gateway_offline", True, gateways_offline),
    Source("experiment_concluded", False, experiments_concluded),
    Source("training_failed", False, training_failed),
    Source("security_event", False, security_events),
)


def labels_json(finding: Finding) -> str:
    return json.dumps({"alertname": finding.kind, "severity": finding.severity} | finding.labels, sort_keys=True)
