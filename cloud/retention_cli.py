"""``iotsphere admin retention``: remove features and predictions older than N days (``cloud.retention``)."""

from __future__ import annotations

from pathlib import Path

import click

from cloud.cli_options import config_from_options, data_dir_option
from cloud.errors import IoTSphereError
from cloud.retention import apply_retention
from cloud.storage import open_database


@click.command("retention")
@click.option(
    "--keep-days", type=click.IntRange(min=1), required=True, help="Keep today and this many days before it (UTC)."
)
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@data_dir_option
def retention_command(keep_days: int, dry_run: bool, data_dir: Path | None) -> None:
    """Remove feature rows and predictions from before the cut-off: whole day partitions on PostgreSQL, batches of
    rows elsewhere, so ingest goes on meanwhile. Predictions an outcome or a rating names are kept. Audited."""
    config = config_from_options(data_dir)
    db = open_database(config.database_url)
    try:
        removed = apply_retention(db, keep_days, dry_run=dry_run, actor=config.actor, progress=click.echo)
    except IoTSphereError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.close()
    for table in removed:
        click.echo(table.describe(dry_run))
