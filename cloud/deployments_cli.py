"""``iotsphere deployments``: where each gateway stands with the release its director document names."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from cloud.cli_options import cloud_database, data_dir_option
from cloud.cli_output import echo_json, echo_table, json_option
from cloud.deployments import (
    DEADLINE_ENV,
    DESCRIBED,
    Deployment,
    DeploymentState,
    describe,
    list_deployments,
    resolve_deadline,
)
from cloud.releases.director import failures, latest_document

_STATES = click.Choice([state.value for state in DeploymentState])
overdue_option = click.option("--overdue", is_flag=True, help="Only deployments past their deadline.")
deadline_option = click.option(
    "--deadline",
    "deadline_s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help=f"Seconds a gateway has to commit or reject a document (default: ${DEADLINE_ENV} or 1800).",
)


def _deadline(deadline_s: float | None) -> timedelta:
    try:
        return resolve_deadline(deadline_s)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


def _echo(deployments: list[Deployment], as_json: bool) -> None:
    if as_json:
        echo_json(deployments)
        return
    echo_table(DESCRIBED, [describe(deployment) for deployment in deployments])


@click.group("deployments")
def deployments() -> None:
    """Per-gateway deployment state: pending, downloading, probation, committed, rejected, rolled back, overdue."""


@deployments.command("list")
@click.option("--gateway", default=None, help="Only this gateway.")
@click.option("--model", default=None, help="Only this model name.")
@click.option("--state", type=_STATES, default=None, help="Only deployments in this state.")
@overdue_option
@deadline_option
@json_option
@data_dir_option
def list_command(
    gateway: str | None,
    model: str | None,
    state: str | None,
    overdue: bool,
    deadline_s: float | None,
    as_json: bool,
    data_dir: Path | None,
) -> None:
    """Every gateway's deployment of each model its latest director document names."""
    if overdue and state not in (None, DeploymentState.OVERDUE.value):
        raise click.ClickException(f"--overdue and --state {state} contradict each other: give one")
    wanted = DeploymentState.OVERDUE if overdue else DeploymentState(state) if state else None
    with cloud_database(data_dir) as db:
        found = list_deployments(db, gateway, model, wanted, _deadline(deadline_s))
    _echo(found, as_json)


@deployments.command("show")
@click.argument("gateway_id")
@overdue_option
@deadline_option
@json_option
@data_dir_option
def show_command(
    gateway_id: str, overdue: bool, deadline_s: float | None, as_json: bool, data_dir: Path | None
) -> None:
    """GATEWAY_ID's deployments, one per model, with the time of each step."""
    with cloud_database(data_dir) as db:
        if latest_document(db, gateway_id) is None:
            raise click.ClickException(f"no director document was issued to gateway {gateway_id!r}")
        found = list_deployments(
            db, gateway_id, state=DeploymentState.OVERDUE if overdue else None, deadline=_deadline(deadline_s)
        )
    if as_json:
        _echo(found, as_json)
        return
    if not found:
        click.echo("none")
    for deployment in found:
        echo_table(DESCRIBED, [describe(deployment)])
        steps = (
            ("issued", deployment.issued_at),
            ("published", deployment.published_at),
            ("downloading", deployment.downloading_at),
            ("probation", deployment.probation_at),
            ("committed", deployment.committed_at),
            ("rejected", deployment.rejected_at),
            ("rolled back", deployment.rolled_back_at),
            ("overdue", deployment.overdue_at),
        )
        for label, when in steps:
            if when is not None:
                click.echo(f"  {label:<12} {when.isoformat()}")


@deployments.command("not-directed")
@json_option
@data_dir_option
def not_directed_command(as_json: bool, data_dir: Path | None) -> None:
    """Gateways the director could not give their latest document, with why; the director publisher retries them."""
    with cloud_database(data_dir) as db:
        found = failures(db)
    if as_json:
        echo_json(found)
        return
    echo_table(
        ["GATEWAY", "SINCE", "ATTEMPTS", "REASON"],
        [(f.gateway_id, f.failed_at.isoformat(), f.attempts, f.reason) for f in found],
    )
