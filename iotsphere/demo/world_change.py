"""Act two of the demo: the world changes, and the platform keeps its model good on its own.

After the first loop closes, the simulator changes the running fleet's world (colder mains water, and a
fast-wearing anode on a share of the heaters); simulated technicians report what they find through each
gateway's own technician path (outbox → MQTT → ingest), stamped with the simulated clock the heaters live on;
and the cloud's real services do the rest, driven here the way their workers drive them, with the simulated
time as ``now``: ``RetrainingService.tick`` (drift check → queued run, and the follow-ups: passing challenger
→ A/B experiment on the gateways → the decision rule's conclusion → staged rollout), the pipeline running the
queued run, and ``RolloutWorker.run_once`` advancing the rollout stage by stage. Each step is printed with its
key figure as it happens. When the time budget runs out first, the act says which step it was waiting on and
why, rather than forcing the next one.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from cloud.config import CloudConfig
from cloud.experiments.service import ExperimentService
from cloud.registry import MLModelRegistry
from cloud.retraining.service import RetrainingService
from cloud.rollouts import store as rollout_store
from cloud.rollouts.automation import AUTO_CANARY_ENV
from cloud.rollouts.engine import StagedRollouts
from cloud.rollouts.worker import RolloutWorker
from cloud.storage import open_database
from edge_agent.technician import OutcomeRefused, OutcomeRequest, TechnicianLog, UnknownDevice, open_log
from firmware_sim.faults import FailureEvent
from firmware_sim.world_change import WorldChange
from iotsphere.demo.options import ActTwoOptions
from iotsphere.demo.sites import Site
from shared.messages import Component, OutcomeResult, PredictionType

Echo = Callable[[str], None]
MODEL = PredictionType.COMPONENT_FAILURE.value
ACTOR = "demo"
#: the retraining cooldown while a challenger is A/B tested (simulated hours): one challenger at a time
PAUSE_WHILE_TESTING_H = 60 * 24.0
#: the feature the colder mains water moves first
INLET = "inlet_temperature_c"


@dataclass
class Technicians:
    """Visits on one site in simulated time: every failure the heaters show, and routine checks that find none."""

    log: TechnicianLog
    rng: random.Random
    reported: set[tuple[str, str, datetime]] = field(default_factory=set)
    visits: int = 0
    failures: int = 0
    refused: int = 0

    def visit(self, failures: list[FailureEvent], device_ids: list[str], routine: int) -> None:
        for failure in failures:
            key = (failure.device_id, failure.component.value, failure.failed_at)
            if key not in self.reported:
                self.reported.add(key)
                self.failures += self._record(failure.device_id, failure.component, OutcomeResult.REPLACED)
        for device in self.rng.sample(device_ids, min(routine, len(device_ids))):
            self.visits += self._record(device, self.rng.choice(list(Component)), OutcomeResult.OK)

    def _record(self, device: str, component: Component, result: OutcomeResult) -> int:
        try:
            self.log.record(OutcomeRequest(device=device, component=component, result=result, technician="demo-tech"))
        except (UnknownDevice, OutcomeRefused):  # a heater the agent has not heard from yet
            self.refused += 1
            return 0
        return 1


class LiveDemo(Protocol):
    """What act two needs of the running demo (``iotsphere.demo.run.Demo``, which starts the act: this module does
    not import it back)."""

    config: CloudConfig
    sites: list[Site]
    passphrase: str


class WorldChangeAct:
    """Runs act two on the demo's live fleet and cloud; ``summary`` says how far the loop got."""

    def __init__(self, demo: LiveDemo, options: ActTwoOptions, echo: Echo):
        self.demo = demo
        self.options = options
        self.echo = echo
        self.config: CloudConfig = demo.config
        self.steps: dict[str, Any] = {}
        self.decisions: list[dict[str, Any]] = []
        self.waiting_on = "the world change"
        self.technicians: dict[str, Technicians] = {}
        self._rng = random.Random(options.seed)
        #: (real monotonic seconds, simulated time) when act two began, for the pace it ran at
        self._began: tuple[float, datetime] | None = None

    def sim_now(self) -> datetime:
        return min(site.now for site in self.demo.sites)

    # -- the act -----------------------------------------------------------------------------------------------

    def run(self) -> None:
        db = open_database(self.config.database_url)
        try:
            self._began = (time.monotonic(), self.sim_now())
            self._inject()
            self._configure(db)
            self._loop(db)
        finally:
            db.close()
            for technicians in self.technicians.values():
                technicians.log.close()

    def _inject(self) -> None:
        o = self.options
        for n, site in enumerate(self.demo.sites):
            change = WorldChange(
                at_days=site.fleet.earliest_change_day,
                inlet_shift_k=o.inlet_shift_k,
                inlet_ramp_days=o.inlet_ramp_days,
                new_anode_share=o.new_anode_share,
                anode_life_days=o.anode_life_days,
                corrosion_days=o.corrosion_days,
            )
            began = site.fleet.inject_change(change)
            self.steps.setdefault("change", {"begins_at": {}, **asdict(change)})["begins_at"][site.gateway_id] = began
            clock = lambda fleet=site.fleet: fleet.now  # noqa: E731 - the site's simulated clock
            self.technicians[site.gateway_id] = Technicians(
                open_log(site.agent.config.data_dir, clock=clock), random.Random(o.seed + n)
            )
            site.speed = o.speed
        self.echo(
            f"  world change: inlet water {o.inlet_shift_k:+g} K (ramp {o.inlet_ramp_days:g} d), a fast-wearing anode "
            f"on {o.new_anode_share:.0%} of the heaters (spent in {o.anode_life_days[0]:g}–{o.anode_life_days[1]:g} d, "
            f"leaking {o.corrosion_days[0]:g}–{o.corrosion_days[1]:g} d later: demo-short), from "
            f"{min(self.steps['change']['begins_at'].values()):%Y-%m-%d %H:%M} (simulated)"
        )
        self.echo(
            f"  accelerated time: {o.speed:g}× from now on ({o.speed / 86400:.2f} simulated days a second); "
            f"technicians visit {o.visits_per_heater_day:g}× per heater per simulated day and report every failure, "
            "through each gateway's technician path"
        )

    def _configure(self, db) -> None:
        policy = RetrainingService(db, self.config, self.demo.passphrase).set_policy(
            MODEL, self.options.policy, actor=ACTOR
        )
        shown = ", ".join(f"{k} {v}" for k, v in self.options.policy.items() if k != "enabled")
        self.echo(f"  retraining policy for {MODEL} (demo settings, simulated time): {shown}")
        self.echo(f"  as with {AUTO_CANARY_ENV}=1, in this demo a winner goes to a staged canary without an operator")
        self.steps["policy"] = asdict(policy)
        self.waiting_on = "feature drift in the monitor's window"

    def _loop(self, db) -> None:
        retraining = RetrainingService(db, self.config, self.demo.passphrase, auto_canary=True)
        rollouts = StagedRollouts(self.config, db, self.demo.passphrase)
        worker = RolloutWorker(self.config, self.demo.passphrase)
        deadline = time.monotonic() + self.options.budget_s
        last_visit = self.sim_now()
        last_look = 0.0
        while time.monotonic() < deadline and not self._completed():
            time.sleep(0.5)
            now = self.sim_now()
            self._visit(now - last_visit)
            last_visit = now
            try:
                for decision in retraining.tick(now):
                    self._on_decision(decision, db)
                run = retraining.pipeline.run_next(echo=lambda line: self.echo(f"    {line}"))
                if run is not None:
                    self._on_run(run)
                    continue
                if time.monotonic() - last_look >= self.options.look_every_s:
                    last_look = time.monotonic()
                    self._look_at_experiment(db)
                    self._advance_rollout(worker, rollouts)
            except sqlite3.OperationalError as exc:  # as the cloud's workers do: the database busy, try next pass
                self.echo(f"  (the cloud database is busy: {exc}; trying again)")
        self._look_at_experiment(db)  # the figures it ended on, however the last pass went
        if not self._completed():
            self.steps["stopped"] = (
                f"the {self.options.budget_s:g} s budget of act two ran out waiting on {self.waiting_on}"
            )
            self.echo(f"  {self.steps['stopped']}")

    def _visit(self, elapsed: timedelta) -> None:
        days = elapsed.total_seconds() / 86400
        for site in self.demo.sites:
            routine = self._rng_round(days * self.options.visits_per_heater_day * len(site.fleet.device_ids))
            self.technicians[site.gateway_id].visit(site.fleet.failures, site.fleet.device_ids, routine)

    def _rng_round(self, expected: float) -> int:
        """Whole visits from a fractional expectation, without drift in the long run."""
        whole = int(expected)
        return whole + (self._rng.random() < expected - whole)

    # -- steps -------------------------------------------------------------------------------------------------

    def _on_decision(self, decision: dict[str, Any], db) -> None:
        self.decisions.append(decision)
        kind = decision["decision"]
        if decision["trigger"] == "check":
            triggers = decision["evidence"]["triggers"]
            drifted = next((t["evidence"].get("drifted", []) for t in triggers if t["kind"] == "feature_drift"), [])
            checks = self.steps.setdefault("checks", {})
            checks[kind] = checks.get(kind, 0) + 1
            if kind == "queued" or checks[kind] == 1:  # guards holding a check back are shown once, then counted
                inlet = f" [{INLET} {'drifted' if INLET in drifted else 'not drifted'}]" if drifted else ""
                self.echo(f"  [{decision['at'][:16]} sim] drift check: {kind} — {decision['reason']}{inlet}")
            if kind == "queued":
                self.steps["drift"] = {"at": decision["at"], "drifted_features": drifted, "reason": decision["reason"]}
                self.steps["run"] = {"run_id": decision["run_id"]}
                self.waiting_on = f"training run {decision['run_id']}"
            return
        self.echo(f"  [{decision['at'][:16]} sim] retraining follow-up: {kind} — {decision['reason']}")
        if kind == "experiment_started":
            experiment = ExperimentService(db, self.config, MLModelRegistry(db), None).status(decision["experiment_id"])
            self.steps["experiment"] = {
                "experiment_id": decision["experiment_id"],
                "challenger_version": decision["model_version"],
                "champion_version": experiment["experiment"]["champion_version"],
                "mode": experiment["experiment"]["mode"],
                "challenger_percent": experiment["experiment"]["challenger_percent"],
                "planned_per_arm": experiment["experiment"]["planned_per_arm"],
            }
            self.waiting_on = f"enough outcomes per arm for experiment {decision['experiment_id']}'s decision rule"
            self.echo(
                "  the experiment is stamped with the simulated time: each arm counts only outcomes of predictions "
                "made after its start"
            )
            retraining = RetrainingService(db, self.config, self.demo.passphrase)
            retraining.set_policy(MODEL, {"cooldown_hours": PAUSE_WHILE_TESTING_H}, actor=ACTOR)
            self.echo(
                f"  one challenger at a time: the demo sets the retraining cooldown to {PAUSE_WHILE_TESTING_H / 24:g} "
                "days while the A/B test runs"
            )
        elif kind == "rollout_started":
            self.steps["rollout"] = {
                "rollout_id": decision["rollout_id"],
                "model_name": MODEL,
                "version": decision["model_version"],
            }
            self.waiting_on = f"staged rollout #{decision['rollout_id']}"
        elif kind in ("run_failed", "not_promotable", "waiting_for_operator", "experiment_concluded"):
            self.steps.setdefault("setbacks", []).append({"decision": kind, "reason": decision["reason"]})
            self.waiting_on = f"another retraining (after: {kind})"
            if kind == "experiment_concluded":
                self.steps.get("experiment", {}).update(decision="not the challenger", reason=decision["reason"])

    def _on_run(self, run) -> None:
        gate = (run.result or {}).get("gate", {})
        entry = {
            "run_id": run.run_id,
            "status": run.status.value,
            "model_version": run.model_version,
            "gate_passed": gate.get("passed"),
            "gate_reason": gate.get("reason") or run.error,
        }
        self.steps["run"] = entry
        self.steps.setdefault("runs", []).append(entry)
        self.echo(
            f"  training run {run.run_id}: {run.status.value}, version {run.model_version}; gate "
            f"{'passed' if gate.get('passed') else 'not passed'}: {entry['gate_reason']}"
        )

    def _look_at_experiment(self, db) -> None:
        experiment = self.steps.get("experiment")
        if not experiment or "decision" in experiment:
            return
        look = ExperimentService(db, self.config, MLModelRegistry(db), None).status(experiment["experiment_id"])
        status = look["experiment"]["status"]
        if status == "concluded":
            # the figures the rule concluded on, from the decision log (a look now would also count the outcomes
            # that arrived after the conclusion)
            details = next(d["details"] for d in reversed(look["decisions"]) if d["action"] == "conclude")
            n, means = details["n"], details["means"]
            p_value, recommendation = details["p_value"], details["recommendation"]
            experiment.update(decision=look["experiment"]["decision"], reason=look["experiment"]["reason"])
        else:
            arms = look["arms"] or {}
            n = {arm: figures["n"] for arm, figures in arms.items()}
            means = {arm: figures["mean"] for arm, figures in arms.items()}
            p_value, recommendation = (look["sequential"] or {}).get("p_value"), look["recommendation"]
        experiment.update(n_per_arm=n, error_rate=means, p_value=p_value, recommendation=recommendation)
        rates = ", ".join(f"{arm} n={n[arm]} error {_rate(means[arm])}" for arm in n)
        self.echo(
            f"  A/B {experiment['experiment_id']} ({status}): {rates}; "
            f"p={'–' if p_value is None else f'{p_value:.3g}'}; rule: {recommendation}"
        )

    def _advance_rollout(self, worker: RolloutWorker, rollouts: StagedRollouts) -> None:
        rollout = self.steps.get("rollout")
        if not rollout:
            return
        worker.run_once(rollouts)
        record = rollout_store.load(rollouts.db, rollout["rollout_id"])
        stages = [{"percent": s.percent, "status": s.status.value, "gateways": s.gateway_ids} for s in record.stages]
        if stages != rollout.get("stages") or record.status.value != rollout.get("status"):
            shown = "; ".join(f"{s['percent']:g} % {s['status']} ({len(s['gateways'])} gw)" for s in stages)
            self.echo(f"  rollout #{record.rollout_id} of v{record.version}: {record.status.value} — {shown}")
        rollout.update(status=record.status.value, stages=stages, outcome=record.outcome)
        if record.status is rollout_store.RolloutStatus.COMPLETED:
            active = MLModelRegistry(rollouts.db).get_active_model(MODEL)
            rollout["production_version"] = active["model_version"] if active else None
        elif record.status is not rollout_store.RolloutStatus.RUNNING:
            self.waiting_on = f"another retraining (rollout {record.status.value}: {record.outcome})"

    def _completed(self) -> bool:
        return self.steps.get("rollout", {}).get("status") == rollout_store.RolloutStatus.COMPLETED.value

    # -- summary -----------------------------------------------------------------------------------------------

    def _pace(self) -> dict[str, float] | None:
        """Simulated days per real second act two ran at: the speed asked for, as far as the CPU gave it."""
        if self._began is None:
            return None
        real_s = time.monotonic() - self._began[0]
        days = (self.sim_now() - self._began[1]).total_seconds() / 86400
        return {
            "real_s": round(real_s, 1),
            "simulated_days": round(days, 1),
            "days_per_s": round(days / real_s, 3) if real_s > 0 else 0.0,
            "asked_days_per_s": round(self.options.speed / 86400, 3),
        }

    def summary(self) -> dict[str, Any]:
        technicians = {
            gateway: {"failures_reported": t.failures, "routine_visits": t.visits, "refused": t.refused}
            for gateway, t in self.technicians.items()
        }
        return {
            "completed": self._completed(),
            **self.steps,
            "technicians": technicians,
            "simulated_until": self.sim_now().isoformat() if self.demo.sites else None,
            "pace": self._pace(),
            "decisions": [
                {k: d.get(k) for k in ("at", "trigger", "decision", "reason", "run_id", "experiment_id", "rollout_id")}
                for d in self.decisions
            ],
        }


def _assignment(experiment: dict[str, Any]) -> str:
    if experiment["mode"] == "shadow":
        return "shadow: every heater runs both, the champion's predictions are used"
    return f"{experiment['challenger_percent']} % of heaters on the challenger"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def print_act_two(summary: dict[str, Any], echo: Echo) -> None:
    """The act-two lines of the demo summary: one per step, with its key figure."""
    echo("act two (world change):")
    pace = summary.get("pace")
    if pace:
        echo(
            f"  time: {pace['simulated_days']:g} simulated days in {pace['real_s']:g} s, "
            f"{pace['days_per_s']:g} days a second (asked for {pace['asked_days_per_s']:g}: the CPU gives what it can)"
        )
    technicians = summary["technicians"].values()
    echo(
        f"  technicians: {sum(t['failures_reported'] for t in technicians)} failures and "
        f"{sum(t['routine_visits'] for t in technicians)} routine visits reported through the gateways"
    )
    drift = summary.get("drift")
    if drift:
        drifted = drift["drifted_features"]
        inlet = "inlet_temperature_c among them" if INLET in drifted else f"{INLET} not among them"
        echo(f"  drift that queued the run: {len(drifted)} features ({inlet}): {', '.join(drifted)}")
    else:
        echo("  drift: no check queued a run")
    run = summary.get("run")
    if run and "status" in run:
        echo(f"  retraining run {run['run_id']}: {run['status']}, v{run['model_version']}; gate: {run['gate_reason']}")
    experiment = summary.get("experiment")
    if experiment:
        n = experiment.get("n_per_arm", {})
        rates = {arm: _rate(rate) for arm, rate in experiment.get("error_rate", {}).items()}
        p_value = experiment.get("p_value")
        echo(
            f"  A/B {experiment['experiment_id']}: v{experiment['challenger_version']} vs v"
            f"{experiment['champion_version']} ({_assignment(experiment)}), "
            f"n per arm {n}, error rate "
            f"{rates}, p {'–' if p_value is None else f'{p_value:.3g}'}, rule {experiment.get('recommendation')}, "
            f"decision {experiment.get('decision', 'none yet')}"
        )
    rollout = summary.get("rollout")
    if rollout:
        stages = ", ".join(f"{s['percent']:g} % {s['status']}" for s in rollout.get("stages", []))
        echo(
            f"  rollout #{rollout['rollout_id']}: {rollout.get('status')} ({stages}); production "
            f"{MODEL} v{rollout.get('production_version', '?')}"
        )
    if summary.get("stopped"):
        echo(f"  not completed: {summary['stopped']}")
