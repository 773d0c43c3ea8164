"""ModelTrainingPipeline: queued training runs, regular schedules, evaluations and the champion/challenger gate.

A run builds a recorded dataset from the FeatureStore, splits it by time (the held-out period after a gap of one
label horizon), trains and converts the challenger, scores it and the production version (the champion) on the
same held-out rows, and registers the challenger with its verdict: it is eligible for promotion only if it beats
the champion's score by the configured relative margin (the registry refuses to promote a failed version without
an admin override). It is then signed into TUF when the key passphrase is available. Any failure fails the run
with its reason and leaves no registry row, artifact folder or half a release behind.

Each change is audited as its ``actor`` in the transaction that makes it: a run queued or cancelled, a schedule
added or removed, an evaluation stored. A run's own steps act for whoever requested it.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from cloud.audit import AuditLog
from cloud.config import PASSPHRASE_ENV, CloudConfig, configured_actor, environment, key_passphrase
from cloud.data import models as stored_models
from cloud.data.connections import connection_of, write_transaction
from cloud.errors import Invalid
from cloud.feature_store import FeatureStore
from cloud.monitoring.reference import build_reference, device_types_of
from cloud.pipeline.runs import DEFAULT_HOLDOUT_FRACTION, RunStore, TrainingRun
from cloud.pipeline.schedules import DEFAULT_WINDOW_DAYS, Schedule, ScheduleStore, fire_time
from cloud.registry import MLModelRegistry
from cloud.storage import iso, utc_time
from cloud.stored_times import where_features_are
from cloud.training.artifacts import write_artifacts
from cloud.training.data import LabelledRows, rows_from_dataset, time_split
from cloud.training.models import Evaluation, candidates_for, evaluate, train
from cloud.training.reliability import DEFAULT_BUDGET, baseline_verdict
from shared.messages import PredictionType

log = logging.getLogger(__name__)

#: a challenger must beat the champion's score by this fraction of it (e.g. 0.01: 1 % better);
#: ``IOTSPHERE_PROMOTION_MARGIN``, read once at import
DEFAULT_MARGIN = environment().promotion_margin
#: how far the labels of a row look ahead: the gap kept between training rows and held-out rows
LABEL_HORIZON = {
    PredictionType.COMPONENT_FAILURE: timedelta(days=14),
    PredictionType.USAGE_PATTERN: timedelta(days=1),
    PredictionType.ANOMALY: timedelta(days=14),
}
#: without a stored test dataset, a version is evaluated on the rows since its held-out period began, or these
DEFAULT_EVALUATION_DAYS = 30


class PipelineError(Invalid):
    """A run or evaluation that cannot go ahead; the message says why and what to do."""


@dataclass(frozen=True)
class RunOptions:
    """What a run may be told beyond its model and dates (stored with the run as JSON)."""

    margin: float = DEFAULT_MARGIN
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION
    device_type: str | None = None
    #: sign the new version into TUF (needs IOTSPHERE_KEY_PASSPHRASE and an initialised repository)
    release: bool = True
    candidates: list[str] | None = None
    #: labels known by this time (ISO): a retraining check's ``now``; default when the run executes
    as_of: str | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunOptions:
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise PipelineError(f"unknown training options {sorted(unknown)}")
        options = cls(**values)
        if not 0 <= options.margin < 1:
            raise PipelineError(f"margin must be in [0, 1), not {options.margin}")
        if not 0.05 <= options.holdout_fraction <= 0.5:
            raise PipelineError(f"holdout_fraction must be in [0.05, 0.5], not {options.holdout_fraction}")
        return options

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class GateVerdict:
    """Whether a challenger may be promoted, and why."""

    passed: bool
    reason: str
    challenger: dict[str, Any]
    champion: dict[str, Any] | None = None
    margin: float = DEFAULT_MARGIN
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "margin": self.margin,
            "challenger": self.challenger,
            "champion": self.champion,
            **self.details,
        }


def model_type(model_name: str) -> PredictionType:
    """Registered model names are their prediction types."""
    try:
        return PredictionType(model_name)
    except ValueError:
        names = ", ".join(t.value for t in PredictionType)
        raise PipelineError(f"unknown model {model_name!r}: the pipeline trains {names}") from None


def _summary(evaluation: Evaluation, version: str | None) -> dict[str, Any]:
    return {"version": version, "score_name": evaluation.score_name, "score": evaluation.score, "rows": evaluation.rows}


def champion_gate(
    challenger: Evaluation, champion: Evaluation | None, champion_version: str | None, margin: float
) -> GateVerdict:
    """Pass only a challenger whose score beats the champion's by ``margin`` of the champion's magnitude."""
    mine = _summary(challenger, None)
    if champion is None:
        return GateVerdict(True, "no production version to beat", mine, None, margin)
    theirs = _summary(champion, champion_version)
    needed = champion.score + margin * abs(champion.score)
    if challenger.score >= needed:
        reason = (
            f"{challenger.score_name} {challenger.score:.4f} beats version {champion_version}'s {champion.score:.4f} "
            f"by at least {margin:.1%}"
        )
        return GateVerdict(True, reason, mine, theirs, margin, {"needed": needed})
    reason = (
        f"{challenger.score_name} {challenger.score:.4f} does not beat version {champion_version}'s "
        f"{champion.score:.4f} by {margin:.1%} (needed {needed:.4f})"
    )
    return GateVerdict(False, reason, mine, theirs, margin, {"needed": needed})


def baselines_gate(verdict: GateVerdict, challenger: Evaluation) -> GateVerdict:
    """``verdict``, refused when the challenger does not beat the baselines where it counts
    (``cloud.training.reliability.baseline_verdict``; component_failure only), with the reason."""
    figures = challenger.metrics.get("reliability")
    if figures is None:
        return verdict
    passed, reason = baseline_verdict(figures)
    details = {**verdict.details, "baselines": {"passed": passed, "reason": reason}}
    if passed:
        return replace(verdict, details=details)
    return replace(verdict, passed=False, reason=f"{reason}; {verdict.reason}", details=details)


def version_files(row: dict) -> tuple[bytes, dict[str, list[str]], list[str]]:
    """A registered version's ONNX bytes, output labels and feature names, read from its artifact folder."""
    lineage = json.loads(row["lineage_json"] or "{}")
    folder = Path(lineage.get("artifacts_path", ""))
    if not (folder / "model.onnx").is_file() or not (folder / "release.json").is_file():
        raise PipelineError(
            f"{row['model_name']} version {row['model_version']} has no artifact folder with model.onnx and "
            f"release.json (looked in {folder or 'nowhere: no artifacts_path in its lineage'})"
        )
    release = json.loads((folder / "release.json").read_bytes())
    return (folder / "model.onnx").read_bytes(), release.get("output_labels") or {}, release["feature_names"]


class ModelTrainingPipeline:
    """Used by the API, the CLI and the training worker alike; every method works on the cloud database."""

    def __init__(self, db: sqlite_utils.Database, config: CloudConfig, passphrase: str | None = None) -> None:
        self.db = db
        self.config = config
        self.passphrase = passphrase if passphrase is not None else key_passphrase()
        self.runs = RunStore(db)
        self.schedules = ScheduleStore(db)
        self.registry = MLModelRegistry(db)
        self.features = FeatureStore(db)

    # -- the plan's methods ------------------------------------------------------------------------------------

    def trigger_model_training(
        self,
        model_name: str,
        training_data_start_date: str | date | datetime,
        training_data_end_date: str | date | datetime,
        options: dict[str, Any] | None = None,
        schedule_id: int | None = None,
        *,
        actor: str | None = None,
    ) -> TrainingRun:
        """Queue a run for the training worker; bad arguments are refused here, not discovered by the worker.

        Dates may be dates, datetimes or ISO-8601 text ("2026-01-01" is that day's midnight UTC)."""
        model_type(model_name)
        try:
            start = utc_time(training_data_start_date, "training_data_start_date")
            end = utc_time(training_data_end_date, "training_data_end_date")
        except ValueError as exc:
            raise PipelineError(str(exc)) from None
        if start >= end:
            raise PipelineError(
                f"training_data_start_date {iso(start)} must be before training_data_end_date {iso(end)}"
            )
        checked = RunOptions.from_dict(options or {})
        known = candidates_for(model_type(model_name))
        unknown = sorted(set(checked.candidates or []) - set(known))
        if unknown:
            raise PipelineError(f"unknown {model_name} candidates {unknown}; choose from {known}")
        actor = actor or configured_actor()
        with write_transaction(self.db):
            run = self.runs.create(model_name, start, end, actor, checked.as_dict(), schedule_id)
            details = {"run_id": run.run_id, "options": json.dumps(run.options, sort_keys=True)}  # JSON has no floats
            AuditLog(self.db).record(actor, "training.trigger", model_name, details)
        return run

    def cancel_run(self, run_id: str, *, actor: str | None = None) -> TrainingRun:
        """Cancel a queued run (RunRefused for one that started: stopping half-way would leave half a version)."""
        with write_transaction(self.db):
            run = self.runs.cancel(run_id)
            AuditLog(self.db).record(actor or configured_actor(), "training.cancel", run.model_name, {"run_id": run_id})
        return run

    def schedule_regular_training(
        self,
        model_name: str,
        schedule: str = "monthly",
        window_days: int = DEFAULT_WINDOW_DAYS,
        options: dict[str, Any] | None = None,
        *,
        actor: str | None = None,
    ) -> Schedule:
        """Train ``model_name`` on the ``window_days`` before each fire time of ``schedule`` (daily, weekly,
        monthly (the default) or cron, UTC)."""
        model_type(model_name)
        checked = RunOptions.from_dict(options or {})
        actor = actor or configured_actor()
        with write_transaction(self.db):
            made = self.schedules.add(model_name, schedule, actor, window_days, checked.as_dict())
            details = {"schedule_id": made.schedule_id, "schedule": made.schedule, "window_days": window_days}
            AuditLog(self.db).record(actor, "training.schedule", model_name, details)
        return made

    def unschedule(self, schedule_id: int, *, actor: str | None = None) -> Schedule:
        """Delete a schedule; runs it already queued stay queued."""
        with write_transaction(self.db):
            removed = self.schedules.remove(schedule_id)
            details = {"schedule_id": schedule_id}
            AuditLog(self.db).record(actor or configured_actor(), "training.unschedule", removed.model_name, details)
        return removed

    def evaluate_model_performance(
        self,
        model_name: str,
        model_version: str,
        test_dataset_id: str | None = None,
        now: datetime | None = None,
        *,
        actor: str | None = None,
        budget: float = DEFAULT_BUDGET,
    ) -> dict[str, Any]:
        """Score a registered version on a stored test dataset, or on a time-based holdout: the rows since its own
        held-out period began (else the last 30 days), as a newly recorded dataset. Stored in ``model_evaluations``.
        component_failure's baselines are fitted on the span the version was trained on (``budget``: see
        cloud.training.reliability)."""
        prediction_type = model_type(model_name)
        actor = actor or configured_actor()
        row = self.registry.get_version(model_name, model_version)
        onnx_bytes, output_labels, feature_names = version_files(row)
        if test_dataset_id:
            dataset = self.features.load_dataset(test_dataset_id)
            if dataset.record.query.get("prediction_type", PredictionType.COMPONENT_FAILURE.value) != model_name:
                raise PipelineError(f"dataset {test_dataset_id} was built for another prediction type")
        else:
            end = now or datetime.now(UTC)
            holdout_from = json.loads(row["lineage_json"] or "{}").get("split", {}).get("holdout_from")
            start = utc_time(holdout_from) if holdout_from else None
            if start is None or start >= end:
                start = end - timedelta(days=DEFAULT_EVALUATION_DAYS)
            dataset = self.features.get_training_dataset(
                feature_names,
                start,
                end,
                prediction_type=prediction_type,
                horizon=LABEL_HORIZON[prediction_type],
                feature_set_version=row["feature_set_version"],
                actor=actor,
            )
        rows = rows_from_dataset(dataset)
        if rows.feature_names != feature_names:
            raise PipelineError(
                f"dataset {dataset.record.dataset_id} has features {rows.feature_names[:3]}…, not the "
                f"{len(feature_names)} version {model_version} was trained on"
            )
        training = None
        if prediction_type is PredictionType.COMPONENT_FAILURE:
            training = self._trained_on(row, feature_names, actor)
        try:
            evaluation = evaluate(prediction_type, onnx_bytes, output_labels, rows, training, budget)
        except ValueError as exc:  # cloud.training refuses rows it cannot score, e.g. a dataset with no failure
            raise PipelineError(
                f"dataset {dataset.record.dataset_id} cannot score version {model_version}: {exc}"
            ) from exc
        trained_on = json.loads(row["lineage_json"] or "{}").get("dataset", {})
        if "calibration" in trained_on:  # a cold start's history: its figures are read with its calibration
            evaluation.metrics["data"] = {k: trained_on[k] for k in ("calibration", "acceleration") if k in trained_on}
        return self._store_evaluation(model_name, model_version, dataset.record.dataset_id, evaluation, actor)

    def _trained_on(self, row: dict, feature_names: list[str], actor: str) -> LabelledRows | None:
        """The component_failure rows of the span a version was fitted on, as its lineage names it (else None)."""
        split = json.loads(row["lineage_json"] or "{}").get("split", {})
        if not split.get("train_from") or not split.get("train_until"):
            return None
        dataset = self.features.get_training_dataset(
            feature_names,
            utc_time(split["train_from"]),
            utc_time(split["train_until"]) + timedelta(seconds=1),
            horizon=LABEL_HORIZON[PredictionType.COMPONENT_FAILURE],
            feature_set_version=row["feature_set_version"],
            actor=actor,
        )
        return rows_from_dataset(dataset)

    def evaluations(self, model_name: str, model_version: str | None = None) -> list[dict[str, Any]]:
        rows = stored_models.evaluations(connection_of(self.db), model_name, model_version or None)
        return [_evaluation_out(row) for row in rows]

    # -- the worker's side ---------------------------------------------------------------------------------------

    def queue_due_schedules(
        self, now: datetime | None = None, guard: Callable[[Schedule], str | None] | None = None
    ) -> list[TrainingRun]:
        """Queue a run for every schedule whose fire time has come (once, however many times it was missed).

        ``guard`` may hold a due schedule back this time (it returns why; the schedule moves to its next time).
        """
        now = now or datetime.now(UTC)
        queued = []
        for schedule in self.schedules.due(now):
            if not self.schedules.claim(schedule, now):
                continue
            if guard is not None and guard(schedule):
                continue
            fired = fire_time(schedule)
            run = self.trigger_model_training(
                schedule.model_name,
                fired - timedelta(days=schedule.window_days),
                fired,
                options=schedule.options,
                schedule_id=schedule.schedule_id,
                actor=f"schedule:{schedule.schedule_id}",
            )
            self.schedules.record_run(schedule.schedule_id, run.run_id)
            queued.append(run)
        return queued

    def run_next(self, run_id: str | None = None, echo: Callable[[str], None] | None = None) -> TrainingRun | None:
        """Claim and execute the oldest queued run (or ``run_id``); return it finished, or None if none was queued."""
        run = self.runs.claim(run_id)
        if run is None:
            return None
        self._execute(run, echo)
        return self.runs.get(run.run_id)

    def _execute(self, run: TrainingRun, echo: Callable[[str], None] | None) -> None:
        def log(message: str) -> None:
            self.runs.log(run.run_id, message)
            if echo:
                echo(message)

        created: list[tuple[str, Path]] = []  # the version registered and its folder, removed if the run fails
        try:
            result, version = self._train(run, log, created)
        except Exception as exc:  # any failure ends the run with its reason; the worker keeps going
            for version, folder in created:
                self.registry.discard_candidate(run.model_name, version, actor=run.requested_by)
                shutil.rmtree(folder, ignore_errors=True)
                log(f"removed the half-made version {version} ({folder})")
            reason = str(exc) if isinstance(exc, ValueError | LookupError) else f"{type(exc).__name__}: {exc}"
            self.runs.fail(run.run_id, reason)
            if echo:
                echo(f"failed: {reason}")
            return
        self.runs.finish(run.run_id, version, result)
        log(f"succeeded: {run.model_name} version {version}")

    def _train(
        self, run: TrainingRun, log: Callable[[str], None], created: list[tuple[str, Path]]
    ) -> tuple[dict[str, Any], str]:
        prediction_type = model_type(run.model_name)
        options = RunOptions.from_dict(run.options)
        release = options.release and self._can_release(log)
        horizon = LABEL_HORIZON[prediction_type]

        self.runs.progress(run.run_id, "dataset", 0.05)
        as_of = utc_time(options.as_of) if options.as_of else datetime.now(UTC)
        end = utc_time(run.end_date)
        if prediction_type is PredictionType.COMPONENT_FAILURE and end > as_of - horizon:
            # a healthy row's label is known only once its horizon has passed: later rows would all be failures
            end = as_of - horizon
            log(
                f"rows after {iso(end)} have no known outcome yet (horizon {horizon.days} days): the dataset ends there"
            )
        if end <= utc_time(run.start_date):
            raise PipelineError(
                f"no rows with known outcomes between {run.start_date} and {iso(end)}: wait for more data"
            )
        log(f"building the {run.model_name} dataset for {run.start_date} .. {iso(end)}")
        dataset = self.features.get_training_dataset(
            None,
            utc_time(run.start_date),
            end,
            device_type=options.device_type,
            prediction_type=prediction_type,
            horizon=horizon,
            as_of=as_of,
            actor=run.requested_by,
        )
        dataset_id = dataset.record.dataset_id
        if not dataset.record.row_count:
            kind = f" of device type {options.device_type}" if options.device_type else ""
            raise PipelineError(
                f"no feature rows{kind} in {run.start_date} .. {iso(end)}: {where_features_are(self.db)}; "
                "train on dates inside them"
            )
        log(f"dataset {dataset_id}: {dataset.record.row_count:,} labelled rows, sha256 {dataset.record.content_hash}")
        rows = rows_from_dataset(dataset)
        train_rows, holdout, holdout_from = time_split(rows, options.holdout_fraction, horizon)
        sizes = f"{len(train_rows.values):,} training rows, {len(holdout.values):,} held out"
        log(f"time split: {sizes} from {holdout_from}")
        self.runs.progress(run.run_id, "training", 0.2, dataset_id=dataset_id)

        trained = train(prediction_type, train_rows, progress=log, candidates=options.candidates, horizon=horizon)
        self.runs.progress(run.run_id, "evaluating", 0.7)
        challenger = evaluate(prediction_type, trained.exported.onnx_bytes, trained.output_labels, holdout, train_rows)
        log(f"challenger on the held-out rows: {challenger.score_name} {challenger.score:.4f}")
        champion, champion_version = self._champion_score(run.model_name, options.device_type, holdout, log)
        verdict = baselines_gate(champion_gate(challenger, champion, champion_version, options.margin), challenger)
        log(f"gate {'passed' if verdict.passed else 'failed'}: {verdict.reason}")

        self.runs.progress(run.run_id, "registering", 0.85)
        trained.split.update(holdout_from=str(holdout_from), holdout_until=str(holdout.window_ends.max()))
        folder = write_artifacts(
            self.config.artifacts_dir,
            self.registry,
            model_name=run.model_name,
            prediction_type=prediction_type,
            trained=trained,
            feature_names=rows.feature_names,
            feature_set_version=rows.feature_set_version,
            lineage={"training_run_id": run.run_id},
            device_types=[options.device_type] if options.device_type else None,
            evaluation=challenger,
            dataset_id=dataset_id,
            reference=build_reference(train_rows, device_types_of(self.db, train_rows.device_ids)),
            actor=run.requested_by,
        )
        version = folder.name
        created.append((version, folder))
        details = {**verdict.as_dict(), "holdout_from": str(holdout_from), "dataset_id": dataset_id}
        self.registry.record_evaluation(run.model_name, version, verdict.passed, details, actor=run.requested_by)
        self._store_evaluation(run.model_name, version, dataset_id, challenger, run.requested_by)
        log(f"registered {run.model_name} version {version} as a candidate ({folder})")

        if release:
            self.runs.progress(run.run_id, "releasing", 0.95)
            self._release(folder, log, run.requested_by)
        return {"gate": details, "released": release, "artifacts": str(folder)}, version

    def _champion_score(
        self, model_name: str, device_type: str | None, holdout: LabelledRows, log: Callable[[str], None]
    ) -> tuple[Evaluation | None, str | None]:
        active = self.registry.get_active_model(model_name, device_type)
        if active is None:
            log("no production version: nothing to beat")
            return None, None
        version = active["model_version"]
        onnx_bytes, output_labels, feature_names = version_files(active)
        if feature_names != holdout.feature_names:
            raise PipelineError(
                f"production version {version} uses other features than this run's dataset; it cannot be scored "
                "on the same held-out rows (train on its feature set, or promote with an admin override)"
            )
        champion = evaluate(model_type(model_name), onnx_bytes, output_labels, holdout)
        log(f"champion version {version} on the same rows: {champion.score_name} {champion.score:.4f}")
        return champion, version

    def _can_release(self, log: Callable[[str], None]) -> bool:
        from cloud.releases import keystore, tuf_repo

        if not tuf_repo.is_initialized(self.config):
            log("not signing into TUF: the repository is not initialised ('iotsphere cloud init')")
            return False
        if not self.passphrase:
            log(f"not signing into TUF: {PASSPHRASE_ENV} is not set; release with 'iotsphere cloud release'")
            return False
        keystore.tuf_signer(self.config.keys_dir, "targets", self.passphrase)  # a wrong passphrase fails now
        return True

    def _release(self, folder: Path, log: Callable[[str], None], actor: str) -> None:
        from cloud.releases.service import ReleaseService

        signed = ReleaseService(self.config, self.passphrase or "").sign(self.db, folder, actor=actor)
        log(f"signed into TUF (targets v{signed.published.targets_version}); promote it to send it to gateways")

    def _store_evaluation(
        self, model_name: str, model_version: str, dataset_id: str, evaluation: Evaluation, actor: str
    ) -> dict[str, Any]:
        row = {
            "model_name": model_name,
            "model_version": model_version,
            "dataset_id": dataset_id,
            "score_name": evaluation.score_name,
            "score": evaluation.score,
            "rows": evaluation.rows,
            "metrics_json": json.dumps(evaluation.metrics, sort_keys=True),
            "evaluated_at": iso(datetime.now(UTC)),
            "evaluated_by": actor,
        }
        with write_transaction(self.db) as connection:
            row["id"] = stored_models.add_evaluation(connection, row)
            details = {"version": model_version, "id": row["id"], "dataset_id": dataset_id}
            AuditLog(self.db).record(actor, "training.evaluate", model_name, details)
        return _evaluation_out(row)


def _evaluation_out(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "metrics_json"}
    out["metrics"] = json.loads(row["metrics_json"] or "{}")
    return out
