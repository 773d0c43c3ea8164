"""``iotsphere models``: the registry on the command line (the same ``MLModelRegistry`` the API uses).

Whoever runs these commands holds the signing-key passphrase, so ``promote --override`` is theirs to use (the
API keeps it to admins). The history and the audit log (written by the registry) name the configured actor
(``IOTSPHERE_ACTOR``, else ``cli:<os user>``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import sqlite_utils

from cloud.cli_options import config_from_options, data_dir_option, mqtt_option
from cloud.cli_output import echo_json, echo_table, json_option
from cloud.config import CloudConfig
from cloud.registry import Change, MLModelRegistry, version_lineage
from cloud.releases import keystore
from cloud.releases.cli import echo_directed
from cloud.releases.publisher import Directed
from cloud.releases.service import ReleaseService
from cloud.storage import open_database

device_type_option = click.option("--device-type", default=None, help="Device type (default: all device types).")
reason_option = click.option("--reason", required=True, help="Why; kept in the model's history.")
override_option = click.option(
    "--override", is_flag=True, help="Let a version that failed evaluation into production (admin decision)."
)


@contextmanager
def _registry(data_dir: Path | None, mqtt_url: str | None = None) -> Iterator[tuple[CloudConfig, MLModelRegistry]]:
    config = config_from_options(data_dir, mqtt_url)
    db: sqlite_utils.Database = open_database(config.database_url)
    try:
        yield config, MLModelRegistry(db)
    finally:
        db.close()


def _scope(device_type: str | None) -> str:
    return device_type or "all"


@click.group("models")
def models() -> None:
    """Registered model versions: list, show, promote, roll back, history."""


@models.command("list")
@click.argument("name", required=False)
@json_option
@data_dir_option
def list_command(name: str | None, as_json: bool, data_dir: Path | None) -> None:
    """Every version (of NAME, or of every model), oldest first."""
    with _registry(data_dir) as (_, registry):
        rows = registry.list_versions(name)
    if as_json:
        echo_json(rows)
        return
    evaluation = {None: "not evaluated", 0: "failed", 1: "passed"}
    echo_table(
        ["MODEL", "VERSION", "STATUS", "FOR", "EVALUATION", "CREATED"],
        [
            (
                row["model_name"],
                row["model_version"],
                row["status"],
                _scope(row["production_device_type"]) if row["status"] == "production" else None,
                evaluation[row["evaluation_passed"]],
                row["created_at"],
            )
            for row in rows
        ],
    )


@models.command("show")
@click.argument("name")
@click.argument("version")
@data_dir_option
def show_command(name: str, version: str, data_dir: Path | None) -> None:
    """One version as JSON: status, evaluation and its full lineage."""
    with _registry(data_dir) as (config, registry):
        row = registry.get_version(name, version)
        shown = {
            "model_name": name,
            "model_version": version,
            "status": row["status"],
            "production_device_type": row["production_device_type"],
            "evaluation_passed": row["evaluation_passed"],
            "device_types": json.loads(row["device_types_json"] or "[]"),
            "lineage": version_lineage(row, config.tuf_dir),
        }
        echo_json(shown)


def _report(change: Change) -> None:
    entry = change.history
    click.echo(
        f"{entry['action']}: {entry['model_name']} for {_scope(entry['device_type'])} "
        f"{entry['from_version'] or '-'} -> {entry['to_version']} (history #{entry['id']})"
    )
    echo_directed(Directed(change.documents, change.failures, change.pending))


def _run(data_dir: Path | None, mqtt_url: str | None, action: Callable[..., Change]) -> None:
    with _registry(data_dir, mqtt_url) as (config, registry):
        rollout = ReleaseService(config, keystore.passphrase_from_env_or_prompt())
        _report(action(registry, rollout, config.actor))


@models.command("promote")
@click.argument("name")
@click.argument("version")
@device_type_option
@reason_option
@override_option
@data_dir_option
@mqtt_option
def promote_command(
    name: str,
    version: str,
    device_type: str | None,
    reason: str,
    override: bool,
    data_dir: Path | None,
    mqtt_url: str | None,
) -> None:
    """Make released VERSION of NAME production and direct gateways to it."""
    _run(
        data_dir,
        mqtt_url,
        lambda registry, rollout, actor: registry.promote_model_to_production(
            name, version, device_type, actor=actor, reason=reason, rollout=rollout, override=override
        ),
    )


@models.command("rollback")
@click.argument("name")
@click.option("--to", "to_version", default=None, help="Version to put back (default: the previous production one).")
@device_type_option
@reason_option
@override_option
@data_dir_option
@mqtt_option
def rollback_command(
    name: str,
    to_version: str | None,
    device_type: str | None,
    reason: str,
    override: bool,
    data_dir: Path | None,
    mqtt_url: str | None,
) -> None:
    """Put an older release of NAME back in production with a new director document.

    A version that failed evaluation comes back only with --override, as for a promotion.
    """
    _run(
        data_dir,
        mqtt_url,
        lambda registry, rollout, actor: registry.rollback_model(
            name, to_version, device_type, actor=actor, reason=reason, rollout=rollout, override=override
        ),
    )


@models.command("history")
@click.argument("name")
@device_type_option
@json_option
@data_dir_option
def history_command(name: str, device_type: str | None, as_json: bool, data_dir: Path | None) -> None:
    """Promotions and rollbacks of NAME, newest first."""
    with _registry(data_dir) as (_, registry):
        registry.list_versions(name)
        entries = registry.history(name, device_type)
    if as_json:
        echo_json(entries)
        return
    echo_table(
        ["ID", "AT", "ACTOR", "ACTION", "FOR", "FROM", "TO", "REASON"],
        [
            (
                entry["id"],
                entry["at"],
                entry["actor"],
                entry["action"] + (" (admin override)" if entry["override"] else ""),
                _scope(entry["device_type"]),
                entry["from_version"] or "-",
                entry["to_version"],
                entry["reason"],
            )
            for entry in entries
        ],
    )
