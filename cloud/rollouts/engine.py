"""StagedRollouts: start a staged rollout, advance it one decision at a time, halt, resume, roll back, cancel.

``start`` directs the canary at once. Each ``advance`` (the ``RolloutWorker`` on a timer, or an operator or a
test explicitly) judges the stage in flight (``cloud.rollouts.verdict``) and acts: a passed stage starts the
next one, or, after the last, makes the version production in the registry; a failed stage halts the rollout
and rolls every gateway the rollout directed back to the version it ran before, with new director documents
(higher sequences); a waiting stage changes nothing. Every decision is stored with its reason.

A stage's start (or a rollback) and the director documents it issues commit in one transaction, and the
documents are sent after it: a broker outage delays a stage (the director publisher sends them later, and a
``publish_pending`` decision says why) but loses nothing, and a fault while directing leaves the rollout as it
was. A gateway that cannot be directed (``director_failures``) is named in the decision; the others go ahead,
and the verdict leaves it out (``cloud.rollouts.verdict``) while the director publisher retries it.

Rolling back follows the registry's one evaluation gate (``MLModelRegistry.rollback_candidate``): a gateway goes
back to the version it ran before, unless that version failed evaluation and is not production (where an admin's
override put it); then it goes to the newest earlier version that passed, or, with none, keeps the rollout's
version, and the decision says which and why. An automatic rollback has no one to give an override, and a
fleet put back on a version the gate refused is what the gate exists to prevent.

Every decision is audited (``rollouts.<decision>``, as the ``actor`` who took it: the caller's, else the configured
one; the worker's is ``rollout-worker``) in the transaction that stores it and the change it decides: a change whose
entry cannot be written is not made. The entry names the decision's id; its reason stays in the decision log.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import sqlite_utils
from sqlalchemy.exc import IntegrityError

from cloud.audit import AuditLog
from cloud.config import CloudConfig, configured_actor
from cloud.data.connections import in_transaction, write_transaction
from cloud.errors import Refused
from cloud.registry import GENERAL, PRODUCTION, MLModelRegistry, RegistryRefused, RegistryUnavailable
from cloud.releases import director, keystore
from cloud.releases.director import DirectorError
from cloud.releases.service import ReleaseService, gateways_in_scope
from cloud.releases.tuf_repo import ImageRepositoryError
from cloud.rollouts import store
from cloud.rollouts.completion import CompletedRollout
from cloud.rollouts.plan import RolloutPlan, stages_for
from cloud.rollouts.store import LIVE, RolloutRecord, RolloutStatus, StageRecord, StageStatus
from cloud.rollouts.verdict import StageVerdict, Verdict, judge_stage


class RolloutRefused(Refused, ValueError):
    """An action the rollout's state or the registry's rules forbid; nothing was changed."""


@dataclass
class StagedRollouts:
    """Rollouts over one database; ``passphrase`` opens the director key (needed to start, advance, roll back)."""

    config: CloudConfig
    db: sqlite_utils.Database
    passphrase: str | None = None

    # -- starting ------------------------------------------------------------------------------------

    def start(
        self,
        model_name: str,
        version: str,
        device_type: str | None = None,
        *,
        actor: str | None = None,
        reason: str,
        plan: RolloutPlan | None = None,
        now: datetime | None = None,
    ) -> RolloutRecord:
        """Check the version can become production, split the gateways in scope into stages, direct the canary."""
        actor = actor or configured_actor()
        now = now or datetime.now(UTC)
        plan = plan or RolloutPlan()
        scope = device_type or GENERAL
        if not reason.strip():
            raise RolloutRefused("a rollout needs a reason")
        row = MLModelRegistry(self.db).get_version(model_name, version)
        self._check_promotable(row, scope)
        self._director().check(model_name, version)  # the key opens and the version is a TUF target
        stages = stages_for(plan, gateways_in_scope(self.db, model_name, scope))
        with write_transaction(self.db):  # the rollout exists only with its canary directed
            try:
                rollout_id = store.create(
                    self.db,
                    model_name,
                    version,
                    scope,
                    plan.to_json(),
                    [(s.percent, s.max_failure_share, s.gateway_ids) for s in stages],
                    actor,
                    reason,
                    now,
                )
            except IntegrityError as exc:
                live = store.list_ids(self.db, RolloutStatus.RUNNING, model_name) + store.list_ids(
                    self.db, RolloutStatus.HALTED, model_name
                )
                raise RolloutRefused(
                    f"{model_name} already has a live rollout for this scope (#{', #'.join(map(str, live))}): "
                    "finish, roll back or cancel it first"
                ) from exc
            plan_text = ", ".join(f"{s.percent:g}% ({len(s.gateway_ids)})" for s in stages)
            record = store.load(self.db, rollout_id)
            self._decide(record, None, actor, "started", f"{reason} [stages: {plan_text}]", now, plan.to_json())
            self._start_stage(record, record.stages[0], actor, now)
        self._deliver(record, 0, actor, now)
        return store.load(self.db, rollout_id)

    @staticmethod
    def _check_promotable(row: dict, scope: str) -> None:
        """Refuse early what the registry would refuse at the end, after every gateway was directed."""
        name, version = row["model_name"], row["model_version"]
        if not row["release_target"]:
            raise RolloutRefused(f"{name} version {version} is not released (signed into TUF): release it first")
        if row["evaluation_passed"] == 0:
            raise RolloutRefused(f"{name} version {version} failed evaluation: promote it by hand if you must")
        targets = json.loads(row["device_types_json"] or "[]")
        if scope != GENERAL and targets and scope not in targets:
            raise RolloutRefused(f"{name} version {version} targets {targets}, not device type {scope!r}")
        if row["status"] == PRODUCTION and row["production_device_type"] == scope:
            raise RolloutRefused(f"{name} version {version} is already production for this scope")

    # -- advancing -----------------------------------------------------------------------------------

    def advance(self, rollout_id: int, *, actor: str | None = None, now: datetime | None = None) -> RolloutRecord:
        """Judge the stage in flight and take the decision it calls for; a rollout not running is left alone."""
        actor = actor or configured_actor()
        now = now or datetime.now(UTC)
        record = store.load(self.db, rollout_id)
        if record.status is not RolloutStatus.RUNNING:
            return record
        stage = record.current_stage()
        if stage is None:  # every stage passed but completion did not finish (a crash, a registry refusal)
            self._complete(record, actor, now)
        elif stage.status is StageStatus.PENDING:
            self._start_stage(record, stage, actor, now)
        else:
            verdict = self.progress(record, now)
            if verdict is not None and verdict.verdict is Verdict.FAILED:
                self._fail(record, stage, verdict, actor, now)
            elif verdict is not None and verdict.verdict is Verdict.PASSED:
                self._pass(record, stage, verdict, actor, now)
        return store.load(self.db, rollout_id)

    def progress(self, record: RolloutRecord, now: datetime | None = None) -> StageVerdict | None:
        """The verdict of the stage in flight, None when no stage is."""
        stage = record.current_stage()
        if stage is None or stage.status is not StageStatus.RUNNING or stage.deadline_at is None:
            return None
        return judge_stage(
            self.db,
            record.model_name,
            record.version,
            stage.gateway_ids,
            stage.deadline_at,
            stage.max_failure_share,
            now or datetime.now(UTC),
        )

    def _start_stage(self, record: RolloutRecord, stage: StageRecord, actor: str, now: datetime) -> None:
        """Mark the stage started and direct its gateways in one transaction; send the documents after it."""
        self._director().check(record.model_name, record.version)  # fail before the stage is marked started
        with write_transaction(self.db):
            if not store.set_stage(
                self.db,
                record.rollout_id,
                stage.index,
                StageStatus.RUNNING,
                StageStatus.PENDING,
                now,
                now + stage.deadline,
            ):
                return
            previous = {g: {"previous_version": self._previous_version(record, g)} for g in stage.gateway_ids}
            store.record_gateways(self.db, record.rollout_id, previous)
            issued = self._issue(record.model_name, record.version, stage.gateway_ids)
            sequences = _sequences(issued)
            directed = {g: {"directed_sequence": s} for g, s in sequences.items()}
            store.record_gateways(self.db, record.rollout_id, directed)
            label = "canary" if stage.index == 0 else f"stage {stage.index + 1}"
            failed = f"; {len(issued.failures)} could not be directed" if issued.failures else ""
            self._decide(
                record,
                stage.index,
                actor,
                "stage_started",
                f"{label}: directed {len(sequences)} of {len(stage.gateway_ids)} gateway(s) ({stage.percent:g}% of "
                f"the scope) to version {record.version}{failed}; deadline {store.now_text(now + stage.deadline)}",
                now,
                {"gateways": sequences, "not_directed": _not_directed(issued)},
            )
        self._deliver(record, stage.index, actor, now)

    def _pass(
        self, record: RolloutRecord, stage: StageRecord, verdict: StageVerdict, actor: str, now: datetime
    ) -> None:
        with write_transaction(self.db):
            if not store.set_stage(
                self.db, record.rollout_id, stage.index, StageStatus.PASSED, StageStatus.RUNNING, now
            ):
                return
            self._decide(record, stage.index, actor, "stage_passed", verdict.summary(), now)
        later = [s for s in record.stages if s.index > stage.index]
        if later:
            self._start_stage(record, later[0], actor, now)
        else:
            self._complete(record, actor, now)

    def _fail(
        self, record: RolloutRecord, stage: StageRecord, verdict: StageVerdict, actor: str, now: datetime
    ) -> None:
        """The stage's failure and the rollback it calls for, in one transaction; the documents sent after it."""
        failing = "; ".join(
            f"{g.gateway_id} {g.state}" + (f" ({g.reason})" if g.reason else "") for g in verdict.failed_gateways
        )
        reason = f"stage {stage.index + 1} ({stage.percent:g}%) failed: {verdict.summary()}: {failing}"
        details = {"gateways": [asdict(g) for g in verdict.gateways]}
        with write_transaction(self.db):
            if not store.set_stage(
                self.db, record.rollout_id, stage.index, StageStatus.FAILED, StageStatus.RUNNING, now
            ):
                return
            self._decide(record, stage.index, actor, "stage_failed", reason, now, details)
            self._roll_back(record, actor, f"automatic halt: {reason}", (RolloutStatus.RUNNING,), now)
        self._deliver(record, None, actor, now)

    def _complete(self, record: RolloutRecord, actor: str, now: datetime) -> None:
        """Make the version production (history: who started the rollout, and why) without re-directing anyone."""
        directed = frozenset(g for s in record.stages for g in s.gateway_ids)
        reason = f"staged rollout #{record.rollout_id} passed every stage: {record.reason}"
        try:
            change = MLModelRegistry(self.db).promote_model_to_production(
                record.model_name,
                record.version,
                record.device_type or None,
                actor=f"{record.created_by} via rollout #{record.rollout_id}",
                reason=reason,
                rollout=CompletedRollout(self.config, self._passphrase(), directed=directed),
            )
        except (RegistryRefused, DirectorError, ImageRepositoryError) as exc:
            why = f"completion refused by the registry: {exc}"
            with write_transaction(self.db):
                if store.set_status(
                    self.db, record.rollout_id, RolloutStatus.HALTED, (RolloutStatus.RUNNING,), now, why
                ):
                    self._decide(record, None, actor, "halted", why, now)
            return
        except RegistryUnavailable as exc:  # nothing changed; the rollout stays running and the next advance retries
            self._decide(record, None, actor, "completion_failed", str(exc), now)
            return
        details = {
            "history_id": change.history["id"],
            "directed_late": [d.signed.gateway_id for d in change.documents],
            "not_directed": {f.gateway_id: f.reason for f in change.failures},
            "pending": change.pending,
        }
        with write_transaction(self.db):
            if store.set_status(
                self.db, record.rollout_id, RolloutStatus.COMPLETED, (RolloutStatus.RUNNING,), now, reason
            ):
                self._decide(record, None, actor, "completed", reason, now, details)

    # -- operator actions ----------------------------------------------------------------------------

    def halt(
        self, rollout_id: int, *, actor: str | None = None, reason: str, now: datetime | None = None
    ) -> RolloutRecord:
        """Stop advancing; gateways keep what they were directed to until resumed, rolled back or cancelled."""
        return self._operator(rollout_id, RolloutStatus.HALTED, (RolloutStatus.RUNNING,), actor, reason, now)

    def resume(
        self, rollout_id: int, *, actor: str | None = None, reason: str, now: datetime | None = None
    ) -> RolloutRecord:
        """Advance again; the stage in flight gets a full deadline from now (a halt stops its clock)."""
        now = now or datetime.now(UTC)
        with write_transaction(self.db):
            record = self._operator(rollout_id, RolloutStatus.RUNNING, (RolloutStatus.HALTED,), actor, reason, now)
            stage = record.current_stage()
            if stage is not None and stage.status is StageStatus.RUNNING:
                store.restart_deadline(self.db, rollout_id, stage.index, now + stage.deadline)
        return store.load(self.db, rollout_id)

    def cancel(
        self, rollout_id: int, *, actor: str | None = None, reason: str, now: datetime | None = None
    ) -> RolloutRecord:
        """End without promoting or rolling back: directed gateways keep the new version."""
        return self._operator(rollout_id, RolloutStatus.CANCELLED, LIVE, actor, reason, now)

    def roll_back(
        self, rollout_id: int, *, actor: str | None = None, reason: str, now: datetime | None = None
    ) -> RolloutRecord:
        """Halt and put every gateway the rollout directed back on the version it ran before."""
        actor = actor or configured_actor()
        now = now or datetime.now(UTC)
        if not reason.strip():
            raise RolloutRefused("rolling back needs a reason")
        record = store.load(self.db, rollout_id)
        keystore.director_key(self.config.keys_dir, self._passphrase())  # a wrong passphrase fails before any change
        with write_transaction(self.db):
            if not self._roll_back(record, actor, reason, LIVE, now):
                raise RolloutRefused(
                    f"rollout #{rollout_id} is {store.load(self.db, rollout_id).status.value}: nothing to roll back"
                )
            stage = record.current_stage()
            if stage is not None and stage.status is StageStatus.RUNNING:
                store.set_stage(self.db, rollout_id, stage.index, StageStatus.FAILED, StageStatus.RUNNING, now)
        self._deliver(record, None, actor, now)
        return store.load(self.db, rollout_id)

    def _operator(
        self,
        rollout_id: int,
        to: RolloutStatus,
        from_: tuple[RolloutStatus, ...],
        actor: str | None,
        reason: str,
        now: datetime | None,
    ) -> RolloutRecord:
        """An operator's status change and its decision, in one transaction."""
        now = now or datetime.now(UTC)
        if not reason.strip():
            raise RolloutRefused(f"a rollout change to {to.value} needs a reason")
        record = store.load(self.db, rollout_id)  # UnknownRollout first
        with write_transaction(self.db):
            if not store.set_status(self.db, rollout_id, to, from_, now, reason if to not in LIVE else None):
                status = store.load(self.db, rollout_id).status.value
                allowed = " or ".join(s.value for s in from_)
                raise RolloutRefused(
                    f"rollout #{rollout_id} is {status}: only a {allowed} rollout can become {to.value}"
                )
            decision = "resumed" if to is RolloutStatus.RUNNING else to.value
            self._decide(record, None, actor or configured_actor(), decision, reason, now)
        return store.load(self.db, rollout_id)

    # -- directing -----------------------------------------------------------------------------------

    def _roll_back(
        self, record: RolloutRecord, actor: str, reason: str, from_: tuple[RolloutStatus, ...], now: datetime
    ) -> bool:
        """In the caller's transaction: mark the rollout rolled back and direct each directed gateway to its
        previous version, as the gate allows (see the module's docstring); the caller sends the documents."""
        if not store.set_status(self.db, record.rollout_id, RolloutStatus.ROLLED_BACK, from_, now, reason):
            return False
        directed = [row for row in store.gateway_rows(self.db, record.rollout_id) if row["directed_sequence"]]
        by_version: dict[str, list[str]] = {}
        for row in directed:
            by_version.setdefault(row["previous_version"] or "", []).append(row["gateway_id"])
        left = by_version.pop("", [])  # nothing older to go back to: they keep the new version
        registry = MLModelRegistry(self.db)
        rolled: dict[str, dict[str, int]] = {}
        instead: dict[str, str] = {}
        not_directed: dict[str, str] = {}
        for previous, gateway_ids in by_version.items():
            version = registry.rollback_candidate(record.model_name, previous, record.device_type or None)
            if version is None or version == record.version:
                instead[previous] = "failed evaluation and no earlier version passed: gateways keep the rollout's"
                left += gateway_ids
                continue
            if version != previous:
                instead[previous] = f"failed evaluation: rolled back to version {version}, the newest earlier passing"
            issued = self._issue(record.model_name, version, gateway_ids)
            sequences = _sequences(issued)
            store.record_gateways(
                self.db, record.rollout_id, {g: {"rollback_sequence": s} for g, s in sequences.items()}
            )
            rolled.setdefault(version, {}).update(sequences)
            not_directed.update(_not_directed(issued))
        details = {
            "to": rolled,
            "left_without_previous_version": left,
            "instead_of": instead,
            "not_directed": not_directed,
        }
        self._decide(record, None, actor, "rolled_back", reason, now, details)
        return True

    def _previous_version(self, record: RolloutRecord, gateway_id: str) -> str | None:
        """What the gateway was directed to before: its document, else the fleet's desired state, else production."""
        document = director.latest_document(self.db, gateway_id)
        if document is not None and record.model_name in document.signed.models:
            return document.signed.models[record.model_name].version
        fleet = director.fleet_desired(self.db).get(record.model_name)
        if fleet is not None:
            return fleet.version
        active = MLModelRegistry(self.db).get_active_model(record.model_name, record.device_type or None)
        return active["model_version"] if active else None

    def _issue(self, model_name: str, version: str, gateway_ids: list[str]) -> director.Issued:
        """Sign and store documents naming ``version``, per gateway, in the caller's transaction."""
        releases = self._director()
        return releases.direct(self.db, gateway_ids, releases.desired(model_name, version))

    def _deliver(self, record: RolloutRecord, stage_index: int | None, actor: str, now: datetime) -> None:
        """After the commit: send what is pending; a broker outage is a decision (the publisher sends them later).

        Inside a caller's transaction nothing is sent (it would send what may yet roll back): the caller delivers.
        """
        if in_transaction(self.db):
            return
        pending = self._director().deliver(self.db)
        if pending:
            self._decide(record, stage_index, actor, "publish_pending", pending, now)

    def _decide(
        self,
        record: RolloutRecord,
        stage_index: int | None,
        actor: str,
        decision: str,
        reason: str,
        now: datetime,
        details: dict | None = None,
    ) -> None:
        """Store a decision and its audit entry together, in the caller's transaction when one is open."""
        with write_transaction(self.db):
            decision_id = store.decide(self.db, record.rollout_id, stage_index, actor, decision, reason, now, details)
            audited = {
                "decision_id": decision_id,
                "model_name": record.model_name,
                "version": record.version,
                "device_type": record.device_type,
                "stage_index": stage_index,
            }
            AuditLog(self.db).record(actor, f"rollouts.{decision}", f"rollout:{record.rollout_id}", audited)

    def _director(self) -> ReleaseService:
        return ReleaseService(self.config, self._passphrase())

    def _passphrase(self) -> str:
        if not self.passphrase:
            raise RolloutRefused("signing director documents needs the key passphrase (IOTSPHERE_KEY_PASSPHRASE)")
        return self.passphrase


def _sequences(issued: director.Issued) -> dict[str, int]:
    return {d.signed.gateway_id: d.signed.sequence for d in issued.documents}


def _not_directed(issued: director.Issued) -> dict[str, str]:
    return {f.gateway_id: f.reason for f in issued.failures}
