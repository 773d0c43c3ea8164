"""``iotsphere retraining``: a model's retraining policy, a check on demand, and the record of decisions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cloud.cli_options import as_of_option, config_from_options, data_dir_option, note_data_elsewhere, resolve_as_of
from cloud.cli_output import echo_json, echo_table
from cloud.config import CloudConfig
from cloud.retraining.policy import RetrainingPolicy
from cloud.storage import open_database
from cloud.stored_times import feature_span
from shared.messages import PredictionType

if TYPE_CHECKING:
    from cloud.retraining.service import RetrainingService

model_argument = click.argument("model_name", type=click.Choice([t.value for t in PredictionType]))


@contextmanager
def _service(data_dir: Path | None) -> Iterator[tuple[CloudConfig, RetrainingService]]:
    from cloud.retraining.service import RetrainingService  # not at import: training and drift take seconds to load

    config = config_from_options(data_dir)
    db = open_database(config.database_url)
    try:
        yield config, RetrainingService(db, config)
    finally:
        db.close()


def _parse_settings(pairs: tuple[str, ...]) -> dict:
    """``name=value`` pairs, each value read as the policy field's type."""
    types = {f.name: type(getattr(RetrainingPolicy(), f.name)) for f in fields(RetrainingPolicy)}
    changes = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in types:
            raise click.BadParameter(f"{pair!r}: use NAME=VALUE with NAME one of {sorted(types)}", param_hint="--set")
        kind = types[name]
        try:
            changes[name] = text.lower() in ("1", "true", "yes", "on") if kind is bool else kind(text)
        except ValueError as exc:
            raise click.BadParameter(f"{pair!r}: {exc}", param_hint="--set") from exc
    return changes


@click.group("retraining")
def retraining() -> None:
    """Automated retraining: policies (triggers, guards, what happens to a winner) and every decision made."""


def _change_policy(data_dir: Path | None, model_name: str, changes: dict) -> None:
    with _service(data_dir) as (config, service):
        policy = service.set_policy(model_name, changes, actor=config.actor)
        echo_json(policy)


@retraining.command("policy")
@model_argument
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE", help="Change a setting (repeatable).")
@data_dir_option
def policy_command(model_name: str, settings: tuple[str, ...], data_dir: Path | None) -> None:
    """Show MODEL_NAME's retraining policy, or change settings with --set (e.g. --set cooldown_hours=12)."""
    if settings:
        _change_policy(data_dir, model_name, _parse_settings(settings))
        return
    with _service(data_dir) as (_, service):
        echo_json(service.policies.get(model_name))


@retraining.command("enable")
@model_argument
@data_dir_option
def enable_command(model_name: str, data_dir: Path | None) -> None:
    """Let the training worker retrain MODEL_NAME when its triggers fire and its guards allow."""
    _change_policy(data_dir, model_name, {"enabled": True})


@retraining.command("disable")
@model_argument
@data_dir_option
def disable_command(model_name: str, data_dir: Path | None) -> None:
    """Stop automated retraining of MODEL_NAME (its schedules still run)."""
    _change_policy(data_dir, model_name, {"enabled": False})


@retraining.command("check")
@model_argument
@as_of_option("feature window")
@data_dir_option
def check_command(model_name: str, as_of: datetime | str, data_dir: Path | None) -> None:
    """Look at drift and feedback as of --as-of, as the worker would now; queue a run if a trigger fires and the
    guards allow."""
    with _service(data_dir) as (config, service):
        span = feature_span(service.db)
        now = resolve_as_of(as_of, span, "feature window")
        decision = service.check(model_name, now, actor=config.actor)
        window = timedelta(days=service.policies.get(model_name).window_days)
        note_data_elsewhere(span, "feature windows", now, now - window)
        click.echo(f"{decision['decision']}: {decision['reason']}")
        if decision["run_id"]:
            click.echo(f"queued training run {decision['run_id']}")


@retraining.command("decisions")
@click.option("--model", "model_name", default=None, help="Only this model's decisions.")
@click.option("--limit", default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON, with their evidence.")
@data_dir_option
def decisions_command(model_name: str | None, limit: int, as_json: bool, data_dir: Path | None) -> None:
    """Every trigger, decision and reason, newest first."""
    with _service(data_dir) as (_, service):
        decisions = service.decisions(model_name, limit)
    if as_json:
        echo_json(decisions)
        return
    echo_table(
        ["AT", "MODEL", "TRIGGER", "DECISION", "REASON"],
        [(d["at"], d["model_name"], d["trigger"], d["decision"], d["reason"]) for d in decisions],
    )
