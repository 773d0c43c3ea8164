"""``iotsphere security``: director documents gateways were sent that the cloud never issued to them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from cloud.cli_options import cloud_database, data_dir_option
from cloud.cli_output import echo_json, echo_table, json_option
from cloud.security_events import MAX_LIMIT, counts, list_events

_gateway_option = click.option("--gateway", default=None, help="Only this gateway.")


@click.group("security")
def security() -> None:
    """Forged or foreign director documents seen on gateways (never a deployment's failure)."""


@security.command("events")
@_gateway_option
@click.option("--since", type=click.DateTime(), default=None, help="Only documents seen at or after this time (UTC).")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=100, show_default=True, help="At most this many.")
@json_option
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
    echo_table(["LAST_SEEN", "EVENT"], [(event.last_seen_at.isoformat(), event.describe()) for event in found])


@security.command("counts")
@_gateway_option
@json_option
@data_dir_option
def counts_command(gateway: str | None, as_json: bool, data_dir: Path | None) -> None:
    """Per gateway: how many such documents it was sent, and how many events named them."""
    with cloud_database(data_dir) as db:
        found = counts(db, gateway)
    if as_json:
        echo_json(found)
        return
    echo_table(
        ["GATEWAY", "DOCUMENTS_NEVER_ISSUED", "EVENTS", "LAST_SEEN"],
        [(c.gateway_id, c.documents, c.sightings, c.last_seen_at.isoformat()) for c in found],
    )
