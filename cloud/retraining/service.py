"""Automated retraining: triggers, guards, and what happens to the challenger; every step recorded with its reason.

Triggers: feature drift and performance drift (``cloud.monitoring.drift``, each check recorded), feedback patterns
(``feedback_patterns``), and the model's training schedules. Guards: a minimum number of labels received since the
production version's data, and a cooldown since the last retraining. A queued run then goes through the
pipeline's own champion/challenger gate on the same time-based holdout. A challenger that passes goes, as the
policy says, to an A/B experiment against the champion (whose conclusion promotes or stops it), straight to a
staged rollout (``cloud.rollouts.automation.start_rollout``: a canary only when automation may start one), or
waits for an operator. Decisions are rows in ``retraining_decisions``: trigger, decision, reason, evidence; each is
audited with its actor (``retraining`` for the worker's own) in the transaction that stores it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from cloud.audit import AuditLog
from cloud.config import CloudConfig, configured_actor, key_passphrase
from cloud.data import features as stored_features
from cloud.data import models as stored_models
from cloud.data import predictions as stored_predictions
from cloud.data import retraining as stored_retraining
from cloud.data.connections import connection_of, write_transaction
from cloud.experiments.store import ExperimentConflict
from cloud.monitoring.drift import detect_model_drift, record_check
from cloud.pipeline.runs import FINISHED, RunStatus
from cloud.pipeline.schedules import Schedule
from cloud.pipeline.training import ModelTrainingPipeline
from cloud.retraining.feedback_patterns import feedback_patterns
from cloud.retraining.policy import PolicyStore, RetrainingPolicy
from cloud.storage import from_iso, iso

log = logging.getLogger(__name__)

ACTOR = "retraining"


class RetrainingService:
    def __init__(
        self,
        db: sqlite_utils.Database,
        config: CloudConfig,
        passphrase: str | None = None,
        auto_canary: bool | None = None,
    ) -> None:
        self.db = db
        self.config = config
        #: may a winner go to a staged canary without an operator (None: as ``IOTSPHERE_ROLLOUT_AUTO_CANARY`` says)
        self.auto_canary = auto_canary
        self.passphrase = passphrase if passphrase is not None else key_passphrase()
        self.pipeline = ModelTrainingPipeline(db, config, self.passphrase)
        self.policies = PolicyStore(db)

    # -- the worker's step -------------------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Check the models whose check is due, queue due schedules (guarded), follow up runs and experiments."""
        now = now or datetime.now(UTC)
        decisions = []
        for model_name in self.policies.enabled_models():
            policy = self.policies.get(model_name)
            last = self._last("check", model_name)
            if last is None or from_iso(last["at"]) <= now - timedelta(minutes=policy.check_every_minutes):
                decisions.append(self.check(model_name, now, actor=ACTOR))
        decisions += self.queue_due_schedules(now)
        decisions += self.follow_up(now)
        return decisions

    # -- policy ------------------------------------------------------------------------------------------------

    def set_policy(self, model_name: str, changes: dict[str, Any], *, actor: str | None = None) -> RetrainingPolicy:
        """Change settings of the model's policy (the others keep their values); InvalidPolicy for a bad one."""
        actor = actor or configured_actor()
        with write_transaction(self.db):
            policy = self.policies.set(model_name, changes, actor)
            details = {"changes": json.dumps(changes, sort_keys=True)}  # audit JSON has no floats
            AuditLog(self.db).record(actor, "retraining.policy", model_name, details)
        return policy

    # -- triggers ----------------------------------------------------------------------------------------------

    def check(self, model_name: str, now: datetime | None = None, *, actor: str | None = None) -> dict[str, Any]:
        """Look at drift and feedback now; queue a run when a trigger fires and the guards allow it."""
        now = now or datetime.now(UTC)
        actor = actor or configured_actor()
        policy = self.policies.get(model_name)
        triggers = self._drift_triggers(model_name, policy, now, actor)
        if policy.feedback:
            window, baseline = timedelta(days=policy.window_days), timedelta(days=policy.baseline_days)
            for pattern in feedback_patterns(
                self.db, model_name, now, window, baseline, policy.min_feedback, policy.min_rise, policy.alpha
            ):
                triggers.append(
                    {
                        "kind": "feedback",
                        "fired": pattern.fired,
                        "reason": pattern.reason,
                        "evidence": pattern.as_dict(),
                    }
                )
        fired = [t for t in triggers if t["fired"]]
        evidence = {"triggers": triggers}
        if not fired:
            reason = "; ".join(t["reason"] for t in triggers) or "no trigger is watched"
            return self._record(model_name, "check", "no_trigger", reason, evidence, now, actor=actor)
        reason = "; ".join(t["reason"] for t in fired)
        blocked = self.guard(model_name, policy, now)
        if blocked:
            return self._record(model_name, "check", "skipped", f"{reason}; but {blocked}", evidence, now, actor=actor)
        run = self.pipeline.trigger_model_training(
            model_name,
            now - timedelta(days=policy.training_days),
            now,
            options={"margin": policy.margin, "as_of": iso(now)},
            actor=actor,
        )
        return self._record(model_name, "check", "queued", reason, evidence, now, run_id=run.run_id, actor=actor)

    def _drift_triggers(
        self, model_name: str, policy: RetrainingPolicy, now: datetime, actor: str
    ) -> list[dict[str, Any]]:
        if not (policy.feature_drift or policy.performance_drift):
            return []
        try:
            result = detect_model_drift(self.db, model_name, days=policy.window_days, now=now)
        except (LookupError, ValueError) as exc:  # no production version, no stored reference, …
            return [{"kind": "drift", "fired": False, "reason": f"no drift check: {exc}", "evidence": {}}]
        check_id = record_check(self.db, result, actor=actor)
        triggers = []
        if policy.feature_drift:
            drifted = result["feature_drift"]["drifted"]
            reason = (
                f"feature drift in {len(drifted)} features ({', '.join(drifted[:5])}{'…' if len(drifted) > 5 else ''})"
                if drifted
                else f"no feature drift ({result['feature_drift']['status']})"
            )
            triggers.append(
                {
                    "kind": "feature_drift",
                    "fired": bool(drifted),
                    "reason": reason,
                    "evidence": {"drift_check_id": check_id, "drifted": drifted},
                }
            )
        if policy.performance_drift:
            performance = result["performance"]
            degraded = performance["status"] == "degraded"
            reason = f"performance {performance['status']}" + (
                f": {performance['reason']}" if "reason" in performance else ""
            )
            triggers.append(
                {
                    "kind": "performance_drift",
                    "fired": degraded,
                    "reason": reason,
                    "evidence": {"drift_check_id": check_id, "status": performance["status"]},
                }
            )
        return triggers

    def queue_due_schedules(self, now: datetime) -> list[dict[str, Any]]:
        """The schedule trigger: due schedules queue runs unless a guard says no; both are recorded."""
        skipped: list[dict[str, Any]] = []

        def guard(schedule: Schedule) -> str | None:
            blocked = self.guard(schedule.model_name, self.policies.get(schedule.model_name), now)
            if blocked:
                reason = f"schedule {schedule.schedule_id} ({schedule.schedule}) is due, but {blocked}"
                skipped.append(self._record(schedule.model_name, "schedule", "skipped", reason, {}, now))
            return blocked

        queued = [
            self._record(
                run.model_name, "schedule", "queued", f"schedule {run.schedule_id} is due", {}, now, run_id=run.run_id
            )
            for run in self.pipeline.queue_due_schedules(now, guard=guard)
        ]
        return skipped + queued

    # -- guards ------------------------------------------------------------------------------------------------

    def guard(self, model_name: str, policy: RetrainingPolicy, now: datetime) -> str | None:
        """Why a retraining may not start now, or None."""
        connection = connection_of(self.db)
        waiting = stored_retraining.open_decisions(connection, model_name)
        if waiting:  # one challenger at a time: its training run or A/B test is not settled yet
            newest = waiting[-1]
            what = (
                f"A/B test {newest['experiment_id']}" if newest["experiment_id"] else f"training run {newest['run_id']}"
            )
            return f"the last retraining's {what} is not settled yet"
        last = stored_retraining.last_queued_at(connection, model_name)
        if last and from_iso(last) > now - timedelta(hours=policy.cooldown_hours):
            return f"in cooldown: the last retraining was queued at {last} ({policy.cooldown_hours:g} h between)"
        if self._data_cutoff(model_name) is None:
            return None  # no production version: a first model needs no new labels to be worth training
        since, new = self.new_labels(model_name, now)
        if new < policy.min_new_labels:
            return f"only {new} new labels since {since}, {policy.min_new_labels} needed"
        return None

    def new_labels(self, model_name: str, now: datetime) -> tuple[str, int]:
        """(since when, how many) labels received after the data of the production version (or ever)."""
        since = self._data_cutoff(model_name) or ""
        sensor_values = model_name == "usage_pattern"
        count = stored_predictions.labels_received(connection_of(self.db), since, iso(now), sensor_values=sensor_values)
        return since or "the beginning", count

    def _data_cutoff(self, model_name: str) -> str | None:
        """When the production version's training data was taken (its dataset's ``as_of``, else its creation)."""
        connection = connection_of(self.db)
        production = stored_models.production_versions(connection, model_name)  # the general scope's first
        if not production:
            return None
        row = production[0]
        dataset_id = json.loads(row["lineage_json"] or "{}").get("dataset_id")
        if dataset_id:
            found = stored_features.find_dataset(connection, dataset_id)
            if found:
                return json.loads(found["query_json"])["as_of"]
        return row["created_at"]

    # -- after the run -----------------------------------------------------------------------------------------

    def follow_up(self, now: datetime) -> list[dict[str, Any]]:
        """Act on finished runs and on experiments this service started; each open decision is closed once."""
        decisions = []
        for row in stored_retraining.open_decisions(connection_of(self.db)):
            decision = self._after_run(row, now) if row["run_id"] else self._after_experiment(row, now)
            if decision is not None:
                with write_transaction(self.db) as connection:
                    stored_retraining.close_decision(connection, row["id"])
                decisions.append(decision)
        return decisions

    def _after_run(self, row: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
        run = self.pipeline.runs.get(row["run_id"])
        if run.status not in FINISHED:
            return None
        name, version = run.model_name, run.model_version
        if run.status != RunStatus.SUCCEEDED:
            return self._record(
                name,
                "follow_up",
                "run_failed",
                f"run {run.run_id} {run.status.value}: {run.error}",
                {},
                now,
                run_id=run.run_id,
            )
        gate = run.result["gate"]
        evidence = {"gate": gate}
        if not gate["passed"]:
            reason = f"version {version} is not promotable: {gate['reason']}"
            return self._record(
                name, "follow_up", "not_promotable", reason, evidence, now, run_id=run.run_id, model_version=version
            )
        if not run.result.get("released"):
            reason = (
                f"version {version} passed the gate but is not signed into TUF (no key passphrase): "
                "an operator must release and promote it"
            )
            return self._record(
                name,
                "follow_up",
                "waiting_for_operator",
                reason,
                evidence,
                now,
                run_id=run.run_id,
                model_version=version,
            )
        policy = self.policies.get(name)
        has_champion = gate.get("champion") is not None
        if policy.after_gate == "experiment" and has_champion:
            return self._start_experiment(name, version, policy, gate, now, run.run_id)
        if policy.after_gate in ("experiment", "rollout"):
            return self._start_rollout(name, version, gate["reason"], evidence, now, run.run_id)
        return self._record(
            name,
            "follow_up",
            "waiting_for_operator",
            f"version {version} passed the gate ({gate['reason']}); the policy leaves it to an operator",
            evidence,
            now,
            run_id=run.run_id,
            model_version=version,
        )

    def _experiments(self, now: datetime):
        """Experiments stamped with the check's ``now`` (a simulation's time in the demo)."""
        from cloud.experiments.service import ExperimentService
        from cloud.registry import MLModelRegistry
        from cloud.releases.service import ReleaseService

        rollout = ReleaseService(self.config, self.passphrase) if self.passphrase else None
        return ExperimentService(self.db, self.config, MLModelRegistry(self.db), rollout, clock=lambda: now)

    def _start_experiment(
        self, name: str, version: str, policy: RetrainingPolicy, gate: dict, now: datetime, run_id: str
    ) -> dict[str, Any]:
        service = self._experiments(now)
        reason = f"version {version} passed the gate ({gate['reason']}): A/B test against the champion"
        try:
            experiment = service.create(
                name,
                version,
                actor=ACTOR,
                mode=policy.experiment_mode,
                challenger_percent=policy.experiment_percent,
                reason=reason,
            )
            service.start(experiment["experiment_id"], actor=ACTOR, reason=reason)
        except (LookupError, ValueError) as exc:
            return self._record(
                name,
                "follow_up",
                "waiting_for_operator",
                f"could not start an A/B test of version {version}: {exc}",
                {"gate": gate},
                now,
                run_id=run_id,
                model_version=version,
            )
        return self._record(
            name,
            "follow_up",
            "experiment_started",
            reason,
            {"gate": gate},
            now,
            model_version=version,
            experiment_id=experiment["experiment_id"],
            open_=True,
        )

    def _after_experiment(self, row: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
        service = self._experiments(now)
        experiment_id = row["experiment_id"]
        look = service.status(experiment_id)
        if look["experiment"]["status"] == "concluded":
            experiment = look["experiment"]
            return self._record(
                row["model_name"],
                "follow_up",
                "experiment_concluded",
                f"experiment {experiment_id} concluded by {experiment['concluded_by']}: "
                f"{experiment['decision']} ({experiment['reason']})",
                {},
                now,
                model_version=row["model_version"],
                experiment_id=experiment_id,
            )
        if look["recommendation"] in (None, "continue"):
            return None
        try:
            outcome = service.conclude(
                experiment_id, actor=ACTOR, reason=f"the decision rule says {look['recommendation']}", promote=False
            )
        except ExperimentConflict:  # NotEnoughData is one
            # data arrived or an operator acted between this look and conclude's own: the next tick looks again
            return None
        concluded = outcome.experiment
        if concluded["decision"] == "challenger":  # the winner goes to a staged rollout, not to every gateway at once
            return self._start_rollout(
                row["model_name"],
                row["model_version"],
                f"won experiment {experiment_id}",
                {"experiment_id": experiment_id, "sequential": look["sequential"]},
                now,
                None,
            )
        return self._record(
            row["model_name"],
            "follow_up",
            "experiment_concluded",
            f"experiment {experiment_id}: {concluded['decision']} ({concluded['reason']})",
            {"sequential": look["sequential"]},
            now,
            model_version=row["model_version"],
            experiment_id=experiment_id,
        )

    def _start_rollout(
        self, name: str, version: str, why: str, evidence: dict, now: datetime, run_id: str | None
    ) -> dict[str, Any]:
        from cloud.rollouts.automation import AUTO_CANARY_ENV, auto_canary_enabled, start_rollout

        try:
            allowed = auto_canary_enabled() if self.auto_canary is None else self.auto_canary
            record = (
                start_rollout(self.config, self.db, name, version, actor=ACTOR, reason=why, passphrase=self.passphrase)
                if allowed
                else None
            )
        except (LookupError, ValueError) as exc:
            return self._record(
                name,
                "follow_up",
                "waiting_for_operator",
                f"could not start a staged rollout of version {version}: {exc}",
                evidence,
                now,
                run_id=run_id,
                model_version=version,
            )
        if record is None:
            return self._record(
                name,
                "follow_up",
                "waiting_for_operator",
                f"version {version} is ready for a staged rollout; automation may not start one "
                f"({AUTO_CANARY_ENV} is off)",
                evidence,
                now,
                run_id=run_id,
                model_version=version,
            )
        return self._record(
            name,
            "follow_up",
            "rollout_started",
            f"staged rollout {record.rollout_id} of version {version}",
            evidence,
            now,
            run_id=run_id,
            model_version=version,
            rollout_id=record.rollout_id,
        )

    # -- the record --------------------------------------------------------------------------------------------

    def _last(self, trigger: str, model_name: str) -> Mapping[str, Any] | None:
        return stored_retraining.last_decision(connection_of(self.db), model_name, trigger)

    def _record(
        self,
        model_name: str,
        trigger: str,
        decision: str,
        reason: str,
        evidence: dict[str, Any],
        now: datetime,
        *,
        run_id: str | None = None,
        model_version: str | None = None,
        experiment_id: str | None = None,
        rollout_id: int | None = None,
        open_: bool = False,
        actor: str = ACTOR,
    ) -> dict[str, Any]:
        """Keep and audit a decision; one that waits on a run (queued) or an experiment stays open for
        ``follow_up``."""
        row = {
            "at": iso(now),
            "model_name": model_name,
            "trigger": trigger,
            "decision": decision,
            "reason": reason,
            "evidence_json": json.dumps(evidence, sort_keys=True, default=str),
            "run_id": run_id,
            "model_version": model_version,
            "experiment_id": experiment_id,
            "rollout_id": rollout_id,
            "open": int(open_ or decision == "queued"),
        }
        with write_transaction(self.db) as connection:
            row["id"] = stored_retraining.add_decision(connection, row)
            details = {"decision_id": row["id"], "decision": decision}
            AuditLog(self.db).record(actor, f"retraining.{trigger}", model_name, details)
        # debug: the caller says it (the CLI prints it, the worker logs it); at info a command printed it twice
        log.debug("retraining %s: %s %s — %s", model_name, trigger, decision, reason)
        return decision_out(row)

    def decisions(self, model_name: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        rows = stored_retraining.decisions(connection_of(self.db), model_name or None, limit)
        return [decision_out(row) for row in rows]


def decision_out(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("evidence_json", "open")}
    out["open"] = bool(row["open"])
    out["evidence"] = json.loads(row["evidence_json"] or "{}")
    return out
