"""``iotsphere alerts``: the alert inbox from a terminal: list, acknowledge, resolve, scan now."""

from __future__ import annotations

from pathlib import Path

import click

from cloud.alerts.inbox import MAX_PAGE, STATES, AlertInbox
from cloud.cli_options import cloud_database, config_from_options, data_dir_option
from cloud.cli_output import echo_json, echo_table, json_option


@click.group("alerts")
def alerts() -> None:
    """What needs a person: drift found, rollouts halted, gateways offline, experiments concluded, training runs
    failed, security events. `cloud serve` scans every $IOTSPHERE_ALERT_SCAN_INTERVAL_S seconds."""


@alerts.command("list")
@click.option("--state", type=click.Choice(STATES), default=None, help="Only this state (default: every state).")
@click.option("--before", "before_id", type=click.IntRange(1), default=None, help="Older than this id (page on).")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=50, show_default=True, help="At most this many.")
@json_option
@data_dir_option
def list_command(state: str | None, before_id: int | None, limit: int, as_json: bool, data_dir: Path | None) -> None:
    """Alerts, newest first."""
    with cloud_database(data_dir) as db:
        found = AlertInbox(db).page(state, before_id, limit)
    if as_json:
        echo_json(found)
        return
    echo_table(
        ["ID", "STATE", "SEVERITY", "KIND", "SINCE", "SUBJECT", "SUMMARY"],
        [(a.id, a.state, a.severity, a.kind, a.started_at, a.subject, a.summary) for a in found],
    )


def _move(verb: str, alert_id: int, data_dir: Path | None, as_json: bool) -> None:
    actor = config_from_options(data_dir).actor
    with cloud_database(data_dir) as db:
        inbox = AlertInbox(db)
        alert = inbox.acknowledge(alert_id, actor) if verb == "acknowledge" else inbox.resolve(alert_id, actor)
    if as_json:
        echo_json(alert)
    else:
        click.echo(f"alert {alert.id} {alert.state} by {actor}: {alert.subject}")


@alerts.command("ack")
@click.argument("alert_id", type=click.IntRange(1))
@json_option
@data_dir_option
def ack_command(alert_id: int, as_json: bool, data_dir: Path | None) -> None:
    """Say someone is on it."""
    _move("acknowledge", alert_id, data_dir, as_json)


@alerts.command("resolve")
@click.argument("alert_id", type=click.IntRange(1))
@json_option
@data_dir_option
def resolve_command(alert_id: int, as_json: bool, data_dir: Path | None) -> None:
    """Done with it."""
    _move("resolve", alert_id, data_dir, as_json)


@alerts.command("scan")
@json_option
@data_dir_option
def scan_command(as_json: bool, data_dir: Path | None) -> None:
    """Look at every source now; print what was raised and what cleared."""
    with cloud_database(data_dir) as db:
        result = AlertInbox(db).scan()
    if as_json:
        echo_json(result)
        return
    click.echo(f"{len(result.raised)} raised, {len(result.cleared)} cleared")
    if result.failed:
        click.echo(f"sources that failed (see the log): {', '.join(result.failed)}", err=True)
