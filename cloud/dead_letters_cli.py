"""``iotsphere dead-letters``: what ingest could not store and why, payloads redacted as the API shows them."""

from __future__ import annotations

from pathlib import Path

import click

from cloud.cli_options import config_from_options, data_dir_option
from cloud.cli_output import echo_json
from cloud.dead_letters import recent
from cloud.storage import open_database


@click.command("dead-letters")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line instead of text.")
@data_dir_option
def dead_letters_command(limit: int, as_json: bool, data_dir: Path | None) -> None:
    """The newest dead letters: id, time, topic, reason, then the payload's start with notes, comments and
    technician redacted (payloads rest encrypted)."""
    db = open_database(config_from_options(data_dir).database_url)
    try:
        views = recent(db, limit)
    finally:
        db.close()
    if as_json:
        for view in views:
            echo_json(view, indent=None)
        return
    if not views:
        click.echo("none")
    for view in views:
        click.echo(f"#{view.id} {view.received_at} {view.topic} ({view.payload_bytes} bytes): {view.reason}")
        click.echo(f"    {view.payload_preview}")
