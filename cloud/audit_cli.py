"""``iotsphere admin audit``: read the audit log, sign checkpoints of it, and verify both on this machine."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from cloud.audit import MAX_LIMIT, AuditLog
from cloud.audit_checkpoints import (
    AuditCheckpoints,
    CheckpointExport,
    CheckpointRefused,
    report_lines,
    sign_now,
    verifying_keys,
)
from cloud.cli_options import config_from_options, data_dir_option
from cloud.cli_output import echo_json, echo_table, json_option
from cloud.config import key_passphrase
from cloud.releases import keystore
from cloud.storage import open_database
from shared.atomic_files import atomic_write
from shared.signing import public_key_hex


@click.group("audit")
def audit() -> None:
    """The audit log of every mutating action: list entries, sign checkpoints, verify chain and checkpoints."""


@audit.command("list")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=100, show_default=True, help="At most this many.")
@click.option("--since-id", type=click.IntRange(0), default=0, show_default=True, help="Entries after this id.")
@click.option("--actor", default=None, help="Only this actor, e.g. key:2e9d01debaa0 or cli:alice.")
@click.option("--action", default=None, help="Only this action, e.g. http.post or models.promote.")
@json_option
@data_dir_option
def list_command(
    limit: int, since_id: int, actor: str | None, action: str | None, as_json: bool, data_dir: Path | None
) -> None:
    """Entries oldest first, one a line: id, time, actor, action, target, details."""
    db = open_database(config_from_options(data_dir).database_url)
    try:
        entries = AuditLog(db).entries(limit, since_id, actor, action)
    finally:
        db.close()
    if as_json:
        echo_json(entries)
        return
    echo_table(
        ["ID", "AT", "ACTOR", "ACTION", "TARGET", "DETAILS"],
        [
            (
                f"#{entry.id}",
                entry.at,
                entry.actor,
                entry.action,
                entry.target,
                json.dumps(entry.details, sort_keys=True),
            )
            for entry in entries
        ],
    )


@audit.command("verify")
@click.option(
    "--checkpoints",
    "checkpoints_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="An exported copy of the checkpoints (export-checkpoints), checked beside the database's own.",
)
@data_dir_option
def verify_command(checkpoints_file: Path | None, data_dir: Path | None) -> None:
    """Recompute the hash chain and check every signed checkpoint against it; exit 1 naming each failure.

    A checkpoint fails when its signature is not the audit key's, when the log holds fewer entries than it signed
    (truncation) or when the first COUNT entries no longer hash to the head it signed (a rewrite). With
    $IOTSPHERE_KEY_PASSPHRASE set, the audit key is taken from its encrypted file rather than keys/audit.pub.
    """
    config = config_from_options(data_dir)
    kept = []
    public_keys, problems = verifying_keys(config.keys_dir, key_passphrase())
    if checkpoints_file is not None:
        export = CheckpointExport.parse(checkpoints_file.read_bytes(), str(checkpoints_file))
        kept = export.checkpoints
        unknown = set(export.public_keys) - {public_key_hex(key) for key in public_keys}
        if public_keys and unknown:
            named = ", ".join(f"{key[:16]}…" for key in sorted(unknown))
            problems.append(
                f"{checkpoints_file} names audit key(s) this keystore does not hold ({named}): its audit.pub was "
                "replaced, or the copy is another cloud's"
            )
    db = open_database(config.database_url)
    try:
        report = AuditCheckpoints(db).verify(public_keys, kept)
    finally:
        db.close()
    report = dataclasses.replace(report, problems=problems + report.problems)
    for line in report_lines(report):
        click.echo(line, err=not report.ok)
    if not report.ok:
        raise click.exceptions.Exit(1)


@audit.command("checkpoint")
@data_dir_option
def checkpoint_command(data_dir: Path | None) -> None:
    """Sign the log's head now with the audit key (created on first use); refused if the log fails verify."""
    config = config_from_options(data_dir)
    passphrase = keystore.passphrase_from_env_or_prompt()
    db = open_database(config.database_url)
    try:
        checkpoint = sign_now(db, config.keys_dir, passphrase, actor=config.actor)
    except CheckpointRefused as exc:
        raise click.ClickException(f"not signed, the audit log fails verification: {exc}") from exc
    finally:
        db.close()
    click.echo(
        f"Signed checkpoint: {checkpoint.count} entries, head {checkpoint.head_hash}, at {checkpoint.at} "
        f"(audit key {checkpoint.keyid[:16]}…)."
    )


@audit.command("export-checkpoints")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="File to write.")
@data_dir_option
def export_checkpoints_command(out: Path, data_dir: Path | None) -> None:
    """Write every checkpoint and the audit public keys to OUT: keep it away from this machine, and check the log
    against it later with ``verify --checkpoints OUT``."""
    config = config_from_options(data_dir)
    public_keys = keystore.audit_public_keys(config.keys_dir)
    db = open_database(config.database_url)
    try:
        export = AuditCheckpoints(db).export(public_keys)
    finally:
        db.close()
    atomic_write(out, export.model_dump_json(indent=1).encode() + b"\n", mode=0o600)
    click.echo(f"Wrote {len(export.checkpoints)} checkpoint(s) to {out}.")
