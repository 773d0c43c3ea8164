"""``iotsphere train``: queue and watch training runs, schedule regular training, evaluate versions.

The same ``ModelTrainingPipeline`` the API and the worker of ``iotsphere cloud serve`` use. ``run --now`` executes
the run in this process (for a machine with no server running); otherwise the worker picks it up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cloud.cli_options import config_from_options, data_dir_option
from cloud.cli_output import echo_json, echo_table, json_option
from cloud.config import CloudConfig
from cloud.pipeline.runs import DEFAULT_HOLDOUT_FRACTION, FINISHED, RunStatus, TrainingRun
from cloud.pipeline.schedules import DEFAULT_WINDOW_DAYS
from cloud.storage import open_database
from shared.messages import PredictionType
from shared.setting_defaults import from_settings

if TYPE_CHECKING:
    from cloud.pipeline.training import ModelTrainingPipeline

model_argument = click.argument("model_name", type=click.Choice([t.value for t in PredictionType]))
_DATE = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"])
margin_option = click.option(
    "--margin",
    type=click.FloatRange(0, 1, max_open=True),
    default=from_settings("promotion_margin"),
    show_default="$IOTSPHERE_PROMOTION_MARGIN",
    help="The challenger must beat production's score by this fraction to be promotable.",
)


@contextmanager
def _pipeline(data_dir: Path | None) -> Iterator[tuple[CloudConfig, ModelTrainingPipeline]]:
    # here, not at import: training loads scikit-learn and ONNX, which would make --help take seconds
    from cloud.pipeline.training import ModelTrainingPipeline

    config = config_from_options(data_dir)
    db = open_database(config.database_url)
    try:
        yield config, ModelTrainingPipeline(db, config)
    finally:
        db.close()


def _describe(run: TrainingRun) -> str:
    line = f"{run.run_id} {run.model_name} {run.status.value}"
    if run.status == RunStatus.RUNNING:
        line += f" ({run.stage}, {run.progress:.0%})"
    if run.model_version:
        line += f" → version {run.model_version}"
    gate = gate_refusal(run)
    if gate:
        line += f", which the champion/challenger gate refused ({gate}): not promotable without an admin override"
    if run.error:
        line += f": {run.error}"
    return line


#: ``train run`` when the run succeeded but its challenger failed the gate: a script must not take it for a new model
GATE_REFUSED_EXIT = 3


@click.group("train")
def train() -> None:
    """Training runs (queued, executed by the training worker), schedules and evaluations."""


@train.command("run")
@model_argument
@click.option("--from", "start", type=_DATE, required=True, help="First day of training data (UTC).")
@click.option("--to", "end", type=_DATE, required=True, help="Day after the last day of training data (UTC).")
@margin_option
@click.option(
    "--holdout-fraction",
    type=click.FloatRange(0.05, 0.5),
    default=DEFAULT_HOLDOUT_FRACTION,
    show_default=True,
    help="Latest share of rows held out for evaluation.",
)
@click.option("--device-type", default=None, help="Train for this device type only.")
@click.option(
    "--release/--no-release",
    default=True,
    show_default=True,
    help="Sign the new version into TUF (needs IOTSPHERE_KEY_PASSPHRASE).",
)
@click.option("--now", "execute_now", is_flag=True, help="Execute the run in this process instead of the worker.")
@click.option("--wait", is_flag=True, help="Follow the queued run's log until it finishes.")
@data_dir_option
def run_command(
    model_name: str,
    start: datetime,
    end: datetime,
    margin: float,
    holdout_fraction: float,
    device_type: str | None,
    release: bool,
    execute_now: bool,
    wait: bool,
    data_dir: Path | None,
) -> None:
    """Queue a training run of MODEL_NAME on the data from --from to --to; exit 1 if it is run here and fails."""
    options = {"margin": margin, "holdout_fraction": holdout_fraction, "device_type": device_type, "release": release}
    with _pipeline(data_dir) as (config, pipeline):
        run = pipeline.trigger_model_training(model_name, start, end, options, actor=config.actor)
        click.echo(f"queued training run {run.run_id}")
        if execute_now:
            run = pipeline.run_next(run.run_id, echo=click.echo) or pipeline.runs.get(run.run_id)
        elif wait:
            run = _follow(pipeline, run.run_id)
        click.echo(_describe(run))
    if run.status == RunStatus.FAILED:
        raise SystemExit(1)
    if gate_refusal(run):
        raise SystemExit(GATE_REFUSED_EXIT)


def gate_refusal(run: TrainingRun) -> str | None:
    """Why the gate refused the run's challenger, or None (passed, or no verdict yet)."""
    gate = (run.result or {}).get("gate") or {}
    return gate.get("reason", "no reason given") if gate.get("passed") is False else None


def _follow(pipeline: ModelTrainingPipeline, run_id: str, poll: float = 1.0) -> TrainingRun:
    seen = 0
    while True:
        for line in pipeline.runs.logs(run_id, seen):
            click.echo(f"{line['at']} {line['message']}")
            seen = line["id"]
        run = pipeline.runs.get(run_id)
        if run.status in FINISHED:
            return run
        time.sleep(poll)


@train.command("runs")
@click.option("--model", "model_name", default=None, help="Only this model's runs.")
@click.option("--status", "run_status", type=click.Choice([s.value for s in RunStatus]), default=None)
@click.option("--limit", default=20, show_default=True)
@json_option
@data_dir_option
def runs_command(
    model_name: str | None, run_status: str | None, limit: int, as_json: bool, data_dir: Path | None
) -> None:
    """Training runs, newest first."""
    with _pipeline(data_dir) as (_, pipeline):
        runs = pipeline.runs.list(model_name, RunStatus(run_status) if run_status else None, limit)
    if as_json:
        echo_json(runs)
        return
    echo_table(["REQUESTED_AT", "RUN"], [(run.requested_at, _describe(run)) for run in runs])


@train.command("show")
@click.argument("run_id")
@click.option("--follow", is_flag=True, help="Keep printing the log until the run finishes.")
@data_dir_option
def show_command(run_id: str, follow: bool, data_dir: Path | None) -> None:
    """A run's details, result or error, and its log."""
    with _pipeline(data_dir) as (_, pipeline):
        run = _follow(pipeline, run_id) if follow else pipeline.runs.get(run_id)
        if not follow:
            for line in pipeline.runs.logs(run_id):
                click.echo(f"{line['at']} {line['message']}")
        echo_json(run.__dict__)


@train.command("cancel")
@click.argument("run_id")
@data_dir_option
def cancel_command(run_id: str, data_dir: Path | None) -> None:
    """Cancel a queued run."""
    with _pipeline(data_dir) as (config, pipeline):
        run = pipeline.cancel_run(run_id, actor=config.actor)
        click.echo(_describe(run))


@train.command("schedule")
@model_argument
@click.argument("schedule")
@click.option(
    "--window-days",
    type=click.IntRange(1, 3650),
    default=DEFAULT_WINDOW_DAYS,
    show_default=True,
    help="Days of data before each fire time.",
)
@margin_option
@data_dir_option
def schedule_command(model_name: str, schedule: str, window_days: int, margin: float, data_dir: Path | None) -> None:
    """Train MODEL_NAME regularly: SCHEDULE is daily, weekly, monthly or a cron expression such as '0 3 * * 1' (UTC).

    The training worker of 'iotsphere cloud serve' queues each run; the schedule survives restarts.
    """
    with _pipeline(data_dir) as (config, pipeline):
        made = pipeline.schedule_regular_training(
            model_name, schedule, window_days, {"margin": margin}, actor=config.actor
        )
        click.echo(f"schedule {made.schedule_id}: {model_name} {made.schedule} ({made.cron}), next {made.next_run_at}")


@train.command("schedules")
@json_option
@data_dir_option
def schedules_command(as_json: bool, data_dir: Path | None) -> None:
    """Training schedules with their next and last runs."""
    with _pipeline(data_dir) as (_, pipeline):
        schedules = pipeline.schedules.list()
    if as_json:
        echo_json(schedules)
        return
    echo_table(
        ["ID", "MODEL", "SCHEDULE", "CRON", "WINDOW_DAYS", "NEXT", "LAST", "LAST_RUN"],
        [
            (
                s.schedule_id,
                s.model_name,
                s.schedule,
                s.cron,
                s.window_days,
                s.next_run_at,
                s.last_run_at or "-",
                s.last_run_id or "-",
            )
            for s in schedules
        ],
    )


@train.command("unschedule")
@click.argument("schedule_id", type=int)
@data_dir_option
def unschedule_command(schedule_id: int, data_dir: Path | None) -> None:
    """Delete a training schedule."""
    with _pipeline(data_dir) as (config, pipeline):
        removed = pipeline.unschedule(schedule_id, actor=config.actor)
        click.echo(f"removed schedule {schedule_id} ({removed.model_name} {removed.schedule})")


@train.command("evaluate")
@model_argument
@click.argument("version")
@click.option("--dataset", "dataset_id", default=None, help="A recorded dataset id (default: time-based holdout).")
@click.option(
    "--budget",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="component_failure: false dispatches allowed per 100 heater-months per component when reading recall "
    "(default 1).",
)
@json_option
@data_dir_option
def evaluate_command(
    model_name: str, version: str, dataset_id: str | None, budget: float | None, as_json: bool, data_dir: Path | None
) -> None:
    """Score a registered version on a stored dataset or a time-based holdout; print and keep the result.

    component_failure also prints the reliability figures (docs/evaluation.md): recall at the false-dispatch
    budget beside the baselines, lead times, calibration and intervals resampled by heater."""
    with _pipeline(data_dir) as (config, pipeline):
        chosen = {} if budget is None else {"budget": budget}  # the default lives in cloud.training.reliability
        result = pipeline.evaluate_model_performance(model_name, version, dataset_id, actor=config.actor, **chosen)
    if as_json:
        echo_json(result)
        return
    from cloud.training.reliability import summary_lines

    metrics = result["metrics"]
    plain = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    click.echo(
        f"{model_name} version {version} on dataset {result['dataset_id']}: {result['score_name']} "
        f"{result['score']} on {result['rows']:,} rows {plain}"
    )
    for line in summary_lines(metrics["reliability"], metrics.get("data")) if "reliability" in metrics else []:
        click.echo(line)


#: how long an idle training worker waits before it looks for due work again
_IDLE_SECONDS = 5.0


@train.command("worker")
@click.option("--once", is_flag=True, help="Do what is due now and execute queued runs, then exit.")
@click.option(
    "--metrics-address",
    default=from_settings("training_metrics_address"),
    help="host:port to serve /metrics, /healthz and /readyz on, or off (default: "
    "$IOTSPHERE_TRAINING_METRICS_ADDRESS or 127.0.0.1:9465; port 0 takes a free one).",
)
@click.option(
    "--poll-every",
    default=_IDLE_SECONDS,
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="Seconds an idle worker waits before looking at the queue again.",
)
@data_dir_option
def worker_command(once: bool, metrics_address: str, poll_every: float, data_dir: Path | None) -> None:
    """Run the training worker in the foreground (it also runs inside 'iotsphere cloud serve'); Ctrl-C stops it.

    It executes queued runs one at a time (any number of workers may, each claiming its own), and, while no other
    process leads them, runs the retraining checks that are due, queues due schedules and follows up finished runs.
    While it runs it serves its metrics and health (live: its loop keeps passing).
    """
    from cloud.data.leader import LeaderLock
    from cloud.observability.health import Heartbeat
    from cloud.observability.http import parse_address, serve_sidecar
    from cloud.pipeline.worker import RETRAINING_LOCK, work_once
    from cloud.retraining.service import RetrainingService
    from cloud.workers import HEARTBEAT_GRACE_SECONDS
    from shared.log_setup import set_role

    set_role("training")
    try:
        metrics_at = None if once else parse_address(metrics_address)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    with _pipeline(data_dir) as (config, pipeline):
        retraining = RetrainingService(pipeline.db, config)
        for run_id in pipeline.runs.fail_interrupted():
            click.echo(f"run {run_id} was interrupted by a stopped worker: marked failed")
        heartbeat = Heartbeat("training-worker", poll_every + HEARTBEAT_GRACE_SECONDS)
        heartbeat.start()
        sidecar = serve_sidecar(config, metrics_at)
        jobs = LeaderLock(config.database_url, RETRAINING_LOCK)  # the checks and schedules: one process at a time
        if not once:
            click.echo(f"training worker ready: taking queued runs, looking every {poll_every:g} s when idle")
        try:
            while True:
                heartbeat.beat(busy=True)
                finished = work_once(retraining, echo=click.echo, jobs=jobs.acquire())
                heartbeat.beat()
                if finished is not None:
                    click.echo(_describe(finished))
                elif once:
                    return
                else:
                    time.sleep(poll_every)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: a run cut short is marked failed when a worker next starts
            click.echo("training worker stopped")
        finally:
            jobs.release()
            heartbeat.stop()
            if sidecar is not None:
                sidecar.stop()
