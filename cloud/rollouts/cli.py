"""``iotsphere rollouts``: staged rollouts on the command line (the same ``StagedRollouts`` the API and worker use).

Commands that sign director documents (start, advance, rollback) need the key passphrase
(``IOTSPHERE_KEY_PASSPHRASE``, else asked for); ``StagedRollouts`` audits each decision as the configured actor
(``IOTSPHERE_ACTOR``, else ``cli:<os user>``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import click

from cloud.cli_options import config_from_options, data_dir_option, mqtt_option
from cloud.cli_output import echo_json, echo_table, json_option
from cloud.config import key_passphrase
from cloud.releases import keystore
from cloud.rollouts import store
from cloud.rollouts.engine import StagedRollouts
from cloud.rollouts.plan import DEFAULT_CANARY_FAILURE_SHARE, DEFAULT_FAILURE_SHARE, RolloutPlan
from cloud.rollouts.store import RolloutRecord, RolloutStatus
from cloud.rollouts.view import rollout_view
from cloud.storage import open_database

reason_option = click.option("--reason", required=True, help="Why; kept in the rollout's decisions.")
_SHARE = click.FloatRange(0, 1, max_open=True)


@contextmanager
def _rollouts(data_dir: Path | None, mqtt_url: str | None = None, signing: bool = False) -> Iterator[StagedRollouts]:
    config = config_from_options(data_dir, mqtt_url)
    passphrase = keystore.passphrase_from_env_or_prompt() if signing else key_passphrase()
    db = open_database(config.database_url)
    try:
        yield StagedRollouts(config, db, passphrase)
    finally:
        db.close()


def _summary(record: RolloutRecord) -> str:
    scope = record.device_type or "all device types"
    stages = " -> ".join(f"{s.percent:g}% {s.status.value}" for s in record.stages)
    return f"#{record.rollout_id} {record.model_name}={record.version} for {scope}: {record.status.value} [{stages}]"


def _show(rollouts: StagedRollouts, record: RolloutRecord, as_json: bool) -> None:
    view = rollout_view(rollouts, record)
    if as_json:
        echo_json(view)
        return
    click.echo(_summary(record))
    if view["progress"]:
        click.echo(f"  in flight: {view['progress']}")
    if record.outcome:
        click.echo(f"  outcome: {record.outcome}")
    for stage in view["stages"]:
        for gateway in stage["gateways"]:
            state = gateway["state"] or "-"
            why = f" ({gateway['reason']})" if gateway["reason"] else ""
            click.echo(
                f"  stage {stage['index'] + 1} {gateway['gateway_id']}: was {gateway['previous_version'] or '-'}, "
                f"directed #{gateway['directed_sequence'] or '-'}, rolled back #{gateway['rollback_sequence'] or '-'}, "
                f"{state}{why}"
            )
    for decision in view["decisions"]:
        click.echo(f"  {decision['at']} {decision['actor']}: {decision['decision']}: {decision['reason']}")
        for gateway_id, why in decision["details"].get("not_directed", {}).items():
            click.echo(f"    not directed {gateway_id}: {why}")


@click.group("rollouts")
def rollouts() -> None:
    """Staged rollouts: a canary share of the gateways, then the rest; halted and rolled back on failure."""


@rollouts.command("start")
@click.argument("name")
@click.argument("version")
@click.option("--device-type", default=None, help="Roll out for this device type only (default: all).")
@reason_option
@click.option(
    "--stage",
    "percentages",
    type=click.FloatRange(0, 100, min_open=True),
    multiple=True,
    help="Cumulative % of the gateways a stage reaches, repeated, ending at 100 (default: 10 then 100).",
)
@click.option(
    "--canary-max-failure",
    type=_SHARE,
    default=DEFAULT_CANARY_FAILURE_SHARE,
    show_default=True,
    help="Failing share (rejected, rolled back, overdue) the canary tolerates.",
)
@click.option(
    "--max-failure",
    type=_SHARE,
    default=DEFAULT_FAILURE_SHARE,
    show_default=True,
    help="Failing share later stages tolerate.",
)
@click.option(
    "--stage-deadline",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Seconds each stage's gateways have to commit (default: the deployment deadline, 1800).",
)
@data_dir_option
@mqtt_option
def start_command(
    name: str,
    version: str,
    device_type: str | None,
    reason: str,
    percentages: tuple[float, ...],
    canary_max_failure: float,
    max_failure: float,
    stage_deadline: float | None,
    data_dir: Path | None,
    mqtt_url: str | None,
) -> None:
    """Start a staged rollout of released VERSION of NAME and direct its canary now."""
    with _rollouts(data_dir, mqtt_url, signing=True) as staged:
        deadline = {"stage_deadline": timedelta(seconds=stage_deadline)} if stage_deadline else {}
        plan = RolloutPlan(percentages or (10.0, 100.0), canary_max_failure, max_failure, **deadline)
        record = staged.start(name, version, device_type, actor=staged.config.actor, reason=reason, plan=plan)
        _show(staged, record, as_json=False)


@rollouts.command("status")
@click.argument("rollout_id", type=int)
@json_option
@data_dir_option
def status_command(rollout_id: int, as_json: bool, data_dir: Path | None) -> None:
    """A rollout's stages, each gateway's standing in the stage in flight, and every decision."""
    with _rollouts(data_dir) as staged:
        _show(staged, store.load(staged.db, rollout_id), as_json)


@rollouts.command("list")
@click.option("--status", "status_", type=click.Choice([s.value for s in RolloutStatus]), default=None)
@click.option("--model", default=None, help="Only this model name.")
@json_option
@data_dir_option
def list_command(status_: str | None, model: str | None, as_json: bool, data_dir: Path | None) -> None:
    """Rollouts, newest first, one line each."""
    with _rollouts(data_dir) as staged:
        ids = store.list_ids(staged.db, RolloutStatus(status_) if status_ else None, model)
        records = [store.load(staged.db, rollout_id) for rollout_id in ids]
    if as_json:
        echo_json(records)
        return
    echo_table(
        ["ID", "MODEL", "VERSION", "FOR", "STATUS", "STAGES"],
        [
            (
                r.rollout_id,
                r.model_name,
                r.version,
                r.device_type or "all device types",
                r.status.value,
                " -> ".join(f"{s.percent:g}% {s.status.value}" for s in r.stages),
            )
            for r in records
        ],
    )


@rollouts.command("advance")
@click.argument("rollout_id", type=int)
@data_dir_option
@mqtt_option
def advance_command(rollout_id: int, data_dir: Path | None, mqtt_url: str | None) -> None:
    """Judge the stage in flight now and act: next stage, completion, halt and roll back, or wait."""
    with _rollouts(data_dir, mqtt_url, signing=True) as staged:
        record = staged.advance(rollout_id, actor=staged.config.actor)
        _show(staged, record, as_json=False)


@rollouts.command("halt")
@click.argument("rollout_id", type=int)
@reason_option
@click.option("--rollback", is_flag=True, help="Also put every directed gateway back on its previous version.")
@data_dir_option
@mqtt_option
def halt_command(rollout_id: int, reason: str, rollback: bool, data_dir: Path | None, mqtt_url: str | None) -> None:
    """Stop advancing ROLLOUT_ID (and with --rollback, undo it)."""
    with _rollouts(data_dir, mqtt_url, signing=rollback) as staged:
        act = staged.roll_back if rollback else staged.halt
        record = act(rollout_id, actor=staged.config.actor, reason=reason)
        _show(staged, record, as_json=False)


@rollouts.command("resume")
@click.argument("rollout_id", type=int)
@reason_option
@data_dir_option
def resume_command(rollout_id: int, reason: str, data_dir: Path | None) -> None:
    """Advance a halted rollout again; the stage in flight gets a full deadline from now."""
    with _rollouts(data_dir) as staged:
        record = staged.resume(rollout_id, actor=staged.config.actor, reason=reason)
        _show(staged, record, as_json=False)


@rollouts.command("cancel")
@click.argument("rollout_id", type=int)
@reason_option
@data_dir_option
def cancel_command(rollout_id: int, reason: str, data_dir: Path | None) -> None:
    """End without promoting or rolling back: directed gateways keep the new version."""
    with _rollouts(data_dir) as staged:
        record = staged.cancel(rollout_id, actor=staged.config.actor, reason=reason)
        _show(staged, record, as_json=False)
