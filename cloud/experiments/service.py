"""ExperimentService: A/B tests of a challenger against the production champion, on real gateways.

- ``create`` plans a draft: both versions released, the champion in production, a metric the model's outcomes
  can score, and the sample size per arm from a power calculation (``cloud.experiments.stats``).
- ``start`` signs director documents naming the challenger and the experiment (mode, share) for the gateways
  in scope and publishes them retained, as a promotion does; gateways split heaters with
  ``shared.experiments.arm_for`` or run both models in shadow.
- ``status`` is one look: per-arm metric with intervals, the always-valid sequential test, guardrails, and
  what the rule recommends now. Looking is free: the rule's false-positive rate holds however often one looks.
- ``stop`` directs the gateways back to the production version alone; the data collected stays.
- ``conclude`` acts on the rule: a winning challenger is promoted through the registry (its gate still applies)
  with the reason "won experiment X"; otherwise the challenger is taken off. Concluding before the rule has
  an answer is refused unless forced with a reason, which keeps the champion.
Every action, and every refusal to conclude, goes to the experiment's decision log; every change is audited as its
``actor`` (default: the configured one) in the transaction that makes it, before any gateway is directed.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlite_utils

from cloud.audit import AuditLog
from cloud.config import CloudConfig, configured_actor
from cloud.data.connections import write_transaction
from cloud.errors import Invalid
from cloud.experiments import guardrails as guards
from cloud.experiments.metrics import CHALLENGER, CHAMPION, arm_observations, metric_for
from cloud.experiments.stats import ArmSummary, arm_interval, planned_per_arm, sequential_test
from cloud.experiments.store import NOW, ExperimentConflict, ExperimentStore, Status
from cloud.registry import GENERAL, PRODUCTION, MLModelRegistry, RegistryRefused
from cloud.releases import director, keystore
from cloud.releases.publisher import Directed
from cloud.releases.service import ReleaseService, gateways_in_scope
from cloud.releases.tuf_repo import current_targets
from cloud.storage import iso
from shared.director import DesiredModel, Experiment
from shared.topics import validate_id

#: the smallest improvement worth detecting, in the metric's units, when the operator names none
DEFAULT_EFFECT = {"error_rate": 0.05, "absolute_error": 5.0}
#: (mean, standard deviation) assumed for planning while the champion has fewer than ``MIN_BASELINE`` outcomes
DEFAULT_BASELINE = {"error_rate": (0.2, None), "absolute_error": (20.0, 15.0)}
MIN_BASELINE = 30


class NotEnoughData(ExperimentConflict):
    """Concluding now would decide on noise: the sequential test has no answer and the plan is not reached."""


class Recommendation(StrEnum):
    CONTINUE = "continue"
    CHALLENGER_WINS = "challenger_wins"
    CHAMPION_WINS = "champion_wins"
    NO_DIFFERENCE = "no_difference"
    GUARDRAIL_BREACHED = "guardrail_breached"


@dataclass(frozen=True)
class Outcome:
    experiment: dict[str, Any]
    directed: Directed
    #: the registry's history entry when the challenger was promoted
    promotion: dict[str, Any] | None = None


class ExperimentService:
    def __init__(
        self,
        db: sqlite_utils.Database,
        config: CloudConfig,
        registry: MLModelRegistry,
        rollout: ReleaseService | None,
        clock: Callable[[], datetime] | None = None,
    ):
        """``rollout`` (the release service) signs director documents; without it (no passphrase) only create,
        status and list work.

        ``clock`` is when things happen (default: now): a simulation in accelerated time passes its own, so an
        experiment counts the predictions made after its simulated start."""
        self.db = db
        self.config = config
        self.registry = registry
        self.rollout = rollout
        self.store = ExperimentStore(db, clock)

    # -- create --------------------------------------------------------------------------------------------

    def create(
        self,
        model_name: str,
        challenger_version: str,
        *,
        actor: str | None = None,
        champion_version: str | None = None,
        mode: str = "split",
        challenger_percent: int = 50,
        min_detectable_effect: float | None = None,
        alpha: float = 0.05,
        power: float = 0.8,
        planned: int | None = None,
        guardrails: dict[str, float] | None = None,
        gateway_ids: list[str] | None = None,
        reason: str = "",
    ) -> dict[str, Any]:
        """Plan a draft experiment; Invalid, ExperimentConflict or the registry's errors when it cannot run."""
        if champion_version is None:
            active = self.registry.get_active_model(model_name)
            if active is None:
                raise ExperimentConflict(f"{model_name} has no production version to be the champion")
            champion_version = active["model_version"]
        champion = self.registry.get_version(model_name, champion_version)
        challenger = self.registry.get_version(model_name, challenger_version)
        if challenger_version == champion_version:
            raise Invalid("the challenger must be a different version from the champion")
        if champion["status"] != PRODUCTION:
            raise ExperimentConflict(
                f"{model_name} version {champion_version} is not in production: it cannot be the champion"
            )
        for row in (champion, challenger):
            if not row["release_target"]:
                raise ExperimentConflict(
                    f"{model_name} version {row['model_version']} is not released (signed into TUF): release it first"
                )
        metric = metric_for(champion["prediction_type"])
        if mode not in ("split", "shadow"):
            raise Invalid(f"mode must be 'split' or 'shadow', not {mode!r}")
        if mode == "split" and not 1 <= challenger_percent <= 99:
            raise Invalid("a split experiment needs a challenger share between 1 and 99 percent")
        try:
            for gateway_id in gateway_ids or []:
                validate_id(gateway_id, "gateway id")
        except ValueError as exc:  # shared.topics knows nothing of the cloud's errors
            raise Invalid(str(exc)) from None
        effect = min_detectable_effect if min_detectable_effect is not None else DEFAULT_EFFECT[metric.name]
        if effect <= 0 or not 0 < alpha < 0.5 or not 0 < power < 1:
            raise Invalid("the effect must be positive, alpha within (0, 0.5) and power within (0, 1)")
        draft = {
            "experiment_id": f"exp-{uuid.uuid4().hex[:12]}",
            "model_name": model_name,
            "prediction_type": champion["prediction_type"],
            "champion_version": champion_version,
            "challenger_version": challenger_version,
            "mode": mode,
            "challenger_percent": challenger_percent if mode == "split" else 0,
            "metric": metric.name,
            "min_detectable_effect": effect,
            "alpha": alpha,
            "power": power,
            "guardrails": guards.guardrails_with_defaults(guardrails),
            "gateway_ids": gateway_ids,
            "started_at": None,
            "stopped_at": None,
        }
        draft["planned_per_arm"] = planned or self._plan(draft, metric.binary)
        actor = actor or configured_actor()
        with write_transaction(self.db):
            experiment = self.store.create(draft, actor, reason)
            self._audit(actor, "create", experiment, challenger=challenger_version, champion=champion_version)
        return experiment

    def _audit(self, actor: str, action: str, experiment: dict[str, Any], **details: Any) -> None:
        """The audit entry of a change, in the caller's transaction (ids and decisions: reasons stay in the log)."""
        AuditLog(self.db).record(actor, f"experiments.{action}", experiment["experiment_id"], details)

    def _plan(self, draft: dict[str, Any], binary: bool) -> int:
        """Sample size per arm, from the champion's own outcomes so far when it has enough of them."""
        history = arm_observations(self.db, draft, since="", until=iso(self.store.clock()))[CHAMPION]
        mean, sd = DEFAULT_BASELINE[draft["metric"]]
        if history.size >= MIN_BASELINE:
            mean, sd = float(history.mean()), float(history.std(ddof=1)) or sd
        return planned_per_arm(mean, sd, draft["min_detectable_effect"], draft["alpha"], draft["power"], binary)

    # -- start / stop --------------------------------------------------------------------------------------

    def start(self, experiment_id: str, *, actor: str | None = None, reason: str = "") -> Outcome:
        """Direct the gateways in scope to run the challenger beside the champion."""
        actor = actor or configured_actor()
        experiment = self.store.get(experiment_id)
        name = experiment["model_name"]
        if self.registry.get_version(name, experiment["champion_version"])["status"] != PRODUCTION:
            raise ExperimentConflict(f"the champion, {name} version {experiment['champion_version']}, left production")
        self._check_signing(experiment)
        self._signing().check(name, experiment["challenger_version"])  # its files on disk are what TUF signed
        desired = self._desired_with_challenger(experiment)  # fails here if either version left TUF
        gateway_ids = experiment["gateway_ids"] or gateways_in_scope(self.db, name, GENERAL)
        if not gateway_ids:
            raise ExperimentConflict(f"no gateway runs {name} yet: nothing to run the experiment on")
        with write_transaction(self.db):
            started = self.store.transition(
                experiment_id,
                (Status.DRAFT,),
                {
                    "status": Status.RUNNING.value,
                    "started_at": NOW,
                    "started_by": actor,
                    "gateway_ids_json": json.dumps(gateway_ids),
                },
                actor,
                "start",
                None,
                reason,
                {"gateway_ids": gateway_ids},
            )
            self._audit(actor, "start", started, gateway_ids=gateway_ids)
            issued = self._issue(gateway_ids, {name: desired})
        return Outcome(started, self._deliver(issued))

    def stop(self, experiment_id: str, *, actor: str | None = None, reason: str) -> Outcome:
        """Take the challenger off the gateways; the experiment keeps its data and can still be concluded."""
        _require_reason(reason, "stopping an experiment")
        actor = actor or configured_actor()
        self._check_signing(self.store.get(experiment_id))
        with write_transaction(self.db):
            stopped = self.store.transition(
                experiment_id,
                (Status.RUNNING,),
                {"status": Status.STOPPED.value, "stopped_at": NOW, "stopped_by": actor},
                actor,
                "stop",
                None,
                reason,
                {},
            )
            self._audit(actor, "stop", stopped)
            issued = self._remove_challenger(stopped)
        return Outcome(stopped, self._deliver(issued))

    def _desired_with_challenger(self, experiment: dict[str, Any]) -> DesiredModel:
        targets = current_targets(self.config)
        name = experiment["model_name"]
        champion = director.target_ref(targets, name, experiment["champion_version"])
        return DesiredModel(
            **champion.model_dump(),
            challenger=director.target_ref(targets, name, experiment["challenger_version"]),
            experiment=Experiment(
                experiment_id=experiment["experiment_id"],
                mode=experiment["mode"],
                challenger_percent=experiment["challenger_percent"],
            ),
        )

    def _remove_challenger(self, experiment: dict[str, Any]) -> director.Issued:
        name = experiment["model_name"]
        active = self.registry.get_active_model(name)
        version = active["model_version"] if active else experiment["champion_version"]
        return self._issue(experiment["gateway_ids"] or [], self._signing().desired(name, version))

    def _check_signing(self, experiment: dict[str, Any]) -> None:
        """Fail before any change if director documents cannot be signed (no or wrong passphrase, no TUF target)."""
        self._signing().check(experiment["model_name"], experiment["champion_version"])

    def _signing(self) -> ReleaseService:
        if self.rollout is None:
            raise keystore.KeystoreError("directing gateways needs the signing-key passphrase")
        return self.rollout

    def _issue(self, gateway_ids: list[str], updates: dict[str, DesiredModel]) -> director.Issued:
        """Sign and store the documents, in the caller's transaction: the experiment's change and its documents
        commit together (a gateway that cannot be directed is recorded, not a reason to roll back)."""
        return self._signing().direct(self.db, gateway_ids, updates)

    def _deliver(self, issued: director.Issued) -> Directed:
        """After the commit: send the documents (a broker outage leaves them pending for the publisher)."""
        return Directed.of(issued, self._signing().deliver(self.db))

    # -- status --------------------------------------------------------------------------------------------

    def status(self, experiment_id: str) -> dict[str, Any]:
        """One look at the experiment: arms, the sequential test, guardrails and the rule's recommendation."""
        experiment = self.store.get(experiment_id)
        metric = metric_for(experiment["prediction_type"])
        look: dict[str, Any] = {"experiment": experiment, "decisions": self.store.decisions(experiment_id)}
        if experiment["started_at"] is None:
            return {**look, "arms": None, "sequential": None, "guardrails": None, "recommendation": None}
        observed = arm_observations(self.db, experiment)
        summaries = {arm: ArmSummary.of(values) for arm, values in observed.items()}
        test = sequential_test(
            summaries[CHAMPION], summaries[CHALLENGER], experiment["min_detectable_effect"], experiment["alpha"]
        )
        figures = guards.arm_figures(self.db, experiment)
        # an experiment stored before a guardrail existed is judged by that guardrail's default
        thresholds = guards.guardrails_with_defaults(experiment["guardrails"])
        breaches = guards.breaches(figures, thresholds)
        versions = {CHAMPION: experiment["champion_version"], CHALLENGER: experiment["challenger_version"]}
        arms = {
            arm: {
                "version": versions[arm],
                "n": summary.n,
                "mean": None if math.isnan(summary.mean) else summary.mean,
                "interval": arm_interval(summary, metric.binary, experiment["alpha"]),
                **figures[arm],
            }
            for arm, summary in summaries.items()
        }
        return {
            **look,
            "arms": arms,
            "sequential": None if test is None else asdict(test),
            "guardrails": {"thresholds": thresholds, "breaches": breaches},
            "recommendation": _recommend(test, breaches, summaries, experiment["planned_per_arm"]).value,
        }

    # -- conclude ------------------------------------------------------------------------------------------

    def conclude(
        self,
        experiment_id: str,
        *,
        actor: str | None = None,
        reason: str = "",
        force: bool = False,
        promote: bool = True,
    ) -> Outcome:
        """Act on the rule: promote a winning challenger, else take it off; refuse an early end unless forced.

        ``promote=False`` concludes a win without promoting: the challenger comes off the arm and the caller rolls
        the winner out in stages (``cloud.rollouts``) instead of to every gateway at once.
        """
        actor = actor or configured_actor()
        look = self.status(experiment_id)
        experiment = look["experiment"]
        if experiment["status"] not in (Status.RUNNING, Status.STOPPED):
            raise ExperimentConflict(
                f"experiment {experiment_id} is {experiment['status']}: only a running or stopped one can be concluded"
            )
        self._check_signing(experiment)
        recommendation = Recommendation(look["recommendation"])
        evidence = _evidence(look)
        if recommendation == Recommendation.CONTINUE:
            if not force:
                n = evidence["n"]
                message = (
                    f"not enough data to conclude {experiment_id}: {n[CHAMPION]} champion and {n[CHALLENGER]} "
                    f"challenger observations of {experiment['planned_per_arm']} planned per arm, and the sequential "
                    "test has no answer yet; keep it running, or force it with a reason (the champion stays)"
                )
                self.store.record_decision(experiment_id, actor, "conclude_refused", None, message, evidence)
                raise NotEnoughData(message)
            _require_reason(reason, "concluding early")
            decision = "inconclusive"
        else:
            decision = "challenger" if recommendation == Recommendation.CHALLENGER_WINS else "champion"
        explanation = reason or f"{recommendation.value.replace('_', ' ')}"
        if decision == "challenger" and promote:
            return self._promote(experiment, actor, explanation, evidence)
        with write_transaction(self.db):
            issued = self._remove_challenger(experiment) if experiment["status"] == Status.RUNNING else None
            concluded = self._conclude(experiment, actor, decision, explanation, evidence)
        return Outcome(concluded, self._deliver(issued) if issued else Directed())

    def _promote(self, experiment: dict[str, Any], actor: str, explanation: str, evidence: dict[str, Any]) -> Outcome:
        experiment_id = experiment["experiment_id"]
        try:
            change = self.registry.promote_model_to_production(
                experiment["model_name"],
                experiment["challenger_version"],
                actor=actor,
                reason=f"won experiment {experiment_id}",
                rollout=self._signing(),
            )
        except RegistryRefused as exc:
            self.store.record_decision(experiment_id, actor, "conclude_refused", "challenger", str(exc), evidence)
            raise
        concluded = self._conclude(
            experiment, actor, "challenger", explanation, {**evidence, "history_id": change.history["id"]}
        )
        return Outcome(concluded, Directed(change.documents, change.failures, change.pending), change.history)

    def _conclude(
        self, experiment: dict[str, Any], actor: str, decision: str, reason: str, evidence: dict[str, Any]
    ) -> dict[str, Any]:
        fields = {
            "status": Status.CONCLUDED.value,
            "concluded_at": NOW,
            "concluded_by": actor,
            "decision": decision,
            "reason": reason,
        }
        if experiment["stopped_at"] is None:
            fields |= {"stopped_at": NOW, "stopped_by": actor}
        with write_transaction(self.db):
            concluded = self.store.transition(
                experiment["experiment_id"],
                (Status.RUNNING, Status.STOPPED),
                fields,
                actor,
                "conclude",
                decision,
                reason,
                evidence,
            )
            self._audit(actor, "conclude", concluded, decision=decision, history_id=evidence.get("history_id"))
        return concluded


def _recommend(test, breaches: list[str], summaries: dict[str, ArmSummary], planned: int) -> Recommendation:
    if breaches:
        return Recommendation.GUARDRAIL_BREACHED
    if test is not None and test.significant:
        return Recommendation.CHALLENGER_WINS if test.difference < 0 else Recommendation.CHAMPION_WINS
    if min(summary.n for summary in summaries.values()) >= planned:
        return Recommendation.NO_DIFFERENCE
    return Recommendation.CONTINUE


def _evidence(look: dict[str, Any]) -> dict[str, Any]:
    """What the decision log keeps of a look: enough to see later why the rule said what it said."""
    arms, test = look["arms"] or {}, look["sequential"] or {}
    return {
        "n": {arm: figures["n"] for arm, figures in arms.items()},
        "means": {arm: figures["mean"] for arm, figures in arms.items()},
        "difference": test.get("difference"),
        "p_value": test.get("p_value"),
        "breaches": (look["guardrails"] or {}).get("breaches", []),
        "recommendation": look["recommendation"],
    }


def _require_reason(reason: str, action: str) -> None:
    if not reason.strip():
        raise Invalid(f"{action} needs a reason")
