"""``iotsphere security``: director documents gateways were sent that the cloud never issued to them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from cloud.cli_options import cloud_database, data_dir_option
from cloud.cli_output import echo_json
from cloud.security_events import MAX_LIMIT, counts, list_events

_gateway_option = click.option("--gateway", default=None, help="Only this gateway.")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of one line each.")


@click.group("security")
def security() -> None:
    """Forged or foreign director documents seen on gateways (never a deployment's failure)."""


@security.command("events")
@_gateway_option
@click.option("--since", type=click.DateTime(), default=None, help="Only documents seen at or after this time (UTC).")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=100, show_default=True, help="At most this many.")
@_json_option
@data_dir_option
def events_command(
    gateway: str | None, since: datetime | None, limit: int, as_json: bool, data_dir: Path | None
) -> None:
    """Each document a gateway reported that the cloud never issued to it, latest sighting first."""
    with cloud_database(data_dir) as db:
        found = list_events(db, gateway, since.replace(tzinfo=UTC) if since else None, limit)
    if as_json:
        echo_json(found)
        return
    for event in found:
        click.echo(f"{event.last_seen_at.isoformat()} {event.describe()}")


@security.command("counts")
@_gateway_option
@_json_option
@data_dir_option
def counts_command(gateway: str | None, as_json: bool, data_dir: Path | None) -> None:
    """Per gateway: how many such documents it was sent, and how many events named them."""
    with cloud_database(data_dir) as db:
        found = counts(db, gateway)
    if as_json:
        echo_json(found)
        return
    for count in found:
        click.echo(
            f"{count.gateway_id}: {count.documents} document(s) never issued to it, {count.sightings} event(s), "
            f"last {count.last_seen_at.isoformat()}"
        )
