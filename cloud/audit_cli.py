"""``iotsphere admin audit``: read the audit log and check its hash chain on this machine."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cloud.audit import MAX_LIMIT, AuditLog
from cloud.cli_options import config_from_options, data_dir_option
from cloud.storage import open_database


@click.group("audit")
def audit() -> None:
    """The audit log of every mutating action: list entries, verify the hash chain."""


@audit.command("list")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=100, show_default=True, help="At most this many.")
@click.option("--since-id", type=click.IntRange(0), default=0, show_default=True, help="Entries after this id.")
@click.option("--actor", default=None, help="Only this actor, e.g. key:2e9d01debaa0 or cli:alice.")
@click.option("--action", default=None, help="Only this action, e.g. http.post or models.promote.")
@data_dir_option
def list_command(limit: int, since_id: int, actor: str | None, action: str | None, data_dir: Path | None) -> None:
    """Entries oldest first, one a line: id, time, actor, action, target, details."""
    db = open_database(config_from_options(data_dir).database_path)
    try:
        entries = AuditLog(db).entries(limit, since_id, actor, action)
    finally:
        db.conn.close()
    for entry in entries:
        details = json.dumps(entry.details, sort_keys=True)
        click.echo(f"#{entry.id} {entry.at} {entry.actor} {entry.action} {entry.target} {details}")


@audit.command("verify")
@data_dir_option
def verify_command(data_dir: Path | None) -> None:
    """Recompute the hash chain; exit 1 naming the first broken entry. Note the head to catch truncation later."""
    db = open_database(config_from_options(data_dir).database_path)
    try:
        result = AuditLog(db).verify()
    finally:
        db.conn.close()
    if not result.ok:
        raise click.ClickException(
            f"audit log broken at entry {result.broken_id}: {result.reason} ({result.checked} entries before it hold)"
        )
    if result.head_id is None:
        click.echo("The audit log is empty.")
    else:
        click.echo(f"{result.checked} entries verified; head #{result.head_id} {result.head_hash}")
