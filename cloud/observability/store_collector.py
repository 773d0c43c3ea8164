"""Gauges of what the database holds, read when Prometheus scrapes: the fleet, deployments, runs, rollouts, audit.

State that lives in the database is counted from it at scrape time, through the read functions of the modules
that own each table, rather than tracked in memory: every process that changes it (the API, the CLI, workers)
is then seen, and a restart loses nothing. Only the API process (``cloud serve``) exports these — every process
reads the same database, so one target suffices. Each section is read on its own: one that fails is logged and
shows as ``iotsphere_scrape_section_ok{section} 0`` while the others are still exported.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import sqlite_utils
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cloud import storage
from cloud.audit_checkpoints import AuditCheckpoints
from cloud.data import director as stored_director
from cloud.data import fleet
from cloud.data.connections import connection_of
from cloud.data.times import iso
from cloud.deployments import DeploymentState, count_deployments
from cloud.experiments.store import ExperimentStore, Status
from cloud.monitoring.drift import drift_history
from cloud.pipeline.runs import FINISHED, RunStatus, RunStore
from cloud.registry import MLModelRegistry
from cloud.rollouts.store import RolloutStatus, list_ids
from cloud.security_events import counts as security_counts

log = logging.getLogger(__name__)

#: most training runs read per scrape (newest first): counts beyond them are not needed to alert
MAX_RUNS = 10_000


def _seconds(text: str | None) -> float | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


def _gauge(name: str, documentation: str, labels: list[str], values: dict[tuple[str, ...], float]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for label_values, value in sorted(values.items()):
        family.add_metric(list(label_values), value)
    return family


def _gateways(db: sqlite_utils.Database, stale_after: float) -> Iterator[Metric]:
    stale_before = iso(datetime.now(UTC) - timedelta(seconds=stale_after))
    states = {(state,): count for state, count in fleet.gateway_states(connection_of(db), stale_before).items()}
    forged = sum(seen.documents for seen in security_counts(db))
    yield _gauge(
        "iotsphere_gateways",
        "Gateways by their last status: online, offline, or online but silent past IOTSPHERE_GATEWAY_STALE_AFTER_S.",
        ["state"],
        states,
    )
    yield _gauge(
        "iotsphere_forged_director_documents",
        "Director documents gateways reported that the cloud never issued to them.",
        [],
        {(): forged},
    )


def _deployments(db: sqlite_utils.Database) -> Iterator[Metric]:
    counted = count_deployments(db)
    by_state: Counter[tuple[str, ...]] = Counter()
    for model in {model for model, _ in counted}:
        by_state.update({(model, state.value): 0 for state in DeploymentState})
    by_state.update({(model, state.value): count for (model, state), count in counted.items()})
    yield _gauge(
        "iotsphere_deployments",
        "Gateways' deployments of each model by state; overdue: no answer within IOTSPHERE_DEPLOYMENT_DEADLINE_S.",
        ["model", "state"],
        by_state,
    )
    documents = stored_director.document_counts(connection_of(db))
    yield _gauge(
        "iotsphere_director_documents",
        "Gateways' latest director documents: pending (stored, not yet confirmed by the broker) or published.",
        ["state"],
        {(state,): count for state, count in documents.items()},
    )


def _training(db: sqlite_utils.Database) -> Iterator[Metric]:
    runs = RunStore(db).list(limit=MAX_RUNS)
    by_state = Counter({(status.value,): 0 for status in RunStatus})
    by_state.update((run.status.value,) for run in runs)
    durations: dict[tuple[str, ...], float] = {}
    for run in runs:  # newest first: the first finished run of each model is its last
        started, finished = _seconds(run.started_at), _seconds(run.finished_at)
        if run.status in FINISHED and started is not None and finished is not None:
            durations.setdefault((run.model_name, run.status.value), finished - started)
    yield _gauge("iotsphere_training_runs", "Training runs by state.", ["state"], by_state)
    yield _gauge(
        "iotsphere_training_run_last_duration_seconds",
        "How long each model's last finished training run took, by how it finished.",
        ["model", "state"],
        durations,
    )


def _drift(db: sqlite_utils.Database) -> Iterator[Metric]:
    models = sorted({row["model_name"] for row in MLModelRegistry(db).list_versions()})
    checked, drifted, features = {}, {}, {}
    for model in models:
        last = drift_history(db, model, limit=1)
        if not last:
            continue
        check = last[0]
        checked[model,] = _seconds(check["checked_at"]) or 0.0
        drifted[model,] = 1.0 if check["status"] == "drift" else 0.0
        features[model, check["model_version"]] = check["drifted_features"]
    yield _gauge(
        "iotsphere_drift_last_check_timestamp_seconds", "When each model's last drift check ran.", ["model"], checked
    )
    yield _gauge("iotsphere_drift_detected", "1 when a model's last drift check found drift.", ["model"], drifted)
    yield _gauge(
        "iotsphere_drift_drifted_features",
        "Features the last drift check of a model found drifted, with the version it checked.",
        ["model", "version"],
        features,
    )


def _experiments_and_rollouts(db: sqlite_utils.Database) -> Iterator[Metric]:
    experiments = Counter({(status.value,): 0 for status in Status})
    experiments.update((row["status"],) for row in ExperimentStore(db).list())
    yield _gauge("iotsphere_experiments", "A/B experiments by state.", ["state"], experiments)
    rollouts = {(status.value,): len(list_ids(db, status)) for status in RolloutStatus}
    yield _gauge("iotsphere_rollouts", "Staged rollouts by state.", ["state"], rollouts)


def _audit(db: sqlite_utils.Database) -> Iterator[Metric]:
    checkpoints = AuditCheckpoints(db).all()
    last = max(checkpoints, key=lambda c: c.at) if checkpoints else None
    yield _gauge(
        "iotsphere_audit_last_verified_timestamp_seconds",
        "When the audit log last verified and was checkpointed (a log that fails verification gets no checkpoint).",
        [],
        {(): _seconds(last.at)} if last else {},
    )
    yield _gauge(
        "iotsphere_audit_verified_entries",
        "Entries of the audit log covered by its last signed checkpoint.",
        [],
        {(): last.count} if last else {},
    )


_SECTIONS: dict[str, Callable[..., Iterator[Metric]]] = {
    "deployments": _deployments,
    "training": _training,
    "drift": _drift,
    "experiments_rollouts": _experiments_and_rollouts,
    "audit": _audit,
}


class StoreCollector(Collector):
    """The database's state as gauges, read at each scrape."""

    def __init__(self, database_url: str, gateway_stale_after: float) -> None:
        self.database_url = database_url
        self.gateway_stale_after = gateway_stale_after

    def collect(self) -> Iterator[Metric]:
        sections_ok = {}
        try:
            db = storage.connect(self.database_url)
        except Exception:
            log.warning("metrics: the database cannot be read", exc_info=True)
            yield _gauge("iotsphere_scrape_section_ok", _SECTION_HELP, ["section"], {("database",): 0})
            return
        try:
            sections = {"gateways": lambda d: _gateways(d, self.gateway_stale_after), **_SECTIONS}
            for section, read in sections.items():
                try:
                    metrics = list(read(db))
                except Exception:  # one table's trouble must not hide the others
                    log.warning("metrics: reading %s failed", section, exc_info=True)
                    sections_ok[section,] = 0
                    continue
                sections_ok[section,] = 1
                yield from metrics
        finally:
            db.close()
        yield _gauge("iotsphere_scrape_section_ok", _SECTION_HELP, ["section"], sections_ok)


_SECTION_HELP = "1 when this scrape could read a section of the database's state, 0 when it failed (see the log)."
