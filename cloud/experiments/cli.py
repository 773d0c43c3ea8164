"""``iotsphere experiments``: A/B tests on the command line (the same ``ExperimentService`` the API uses).

Commands that direct gateways (start, stop, conclude) sign director documents, so they ask for the key
passphrase (or read ``IOTSPHERE_KEY_PASSPHRASE``); the service audits each change as the configured actor.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cloud.cli_options import config_from_options, data_dir_option, mqtt_option
from cloud.cli_output import echo_json, echo_table, json_option
from cloud.experiments.guardrails import DEFAULT_GUARDRAILS
from cloud.experiments.store import Status
from cloud.storage import open_database

if TYPE_CHECKING:
    from cloud.experiments.service import ExperimentService, Outcome

reason_option = click.option("--reason", default="", help="Why; kept in the experiment's decision log.")


@contextmanager
def _service(data_dir: Path | None, mqtt_url: str | None = None, signing: bool = False) -> Iterator[ExperimentService]:
    # here, not at import: the service's statistics (scipy) and signing (tuf) would make --help take a second
    from cloud.experiments.service import ExperimentService
    from cloud.registry import MLModelRegistry
    from cloud.releases import keystore
    from cloud.releases.service import ReleaseService

    config = config_from_options(data_dir, mqtt_url)
    db = open_database(config.database_url)
    try:
        rollout = ReleaseService(config, keystore.passphrase_from_env_or_prompt()) if signing else None
        yield ExperimentService(db, config, MLModelRegistry(db), rollout)
    finally:
        db.close()


def _guardrails(pairs: tuple[str, ...]) -> dict[str, float]:
    guardrails = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            guardrails[name] = float(value)
        except ValueError:
            raise click.BadParameter(f"{pair!r} is not NAME=NUMBER", param_hint="--guardrail") from None
    return guardrails


def _report(outcome: Outcome) -> None:
    experiment = outcome.experiment
    click.echo(
        f"{experiment['experiment_id']}: {experiment['status']}"
        + (f", decision {experiment['decision']} ({experiment['reason']})" if experiment["decision"] else "")
    )
    if outcome.promotion:
        entry = outcome.promotion
        click.echo(
            f"Promoted {entry['model_name']} {entry['from_version'] or '-'} -> {entry['to_version']} "
            f"(history #{entry['id']}: {entry['reason']})"
        )
    from cloud.releases.cli import echo_directed

    echo_directed(outcome.directed)


@click.group("experiments")
def experiments() -> None:
    """A/B tests of a challenger version against the production champion: create, start, status, stop, conclude."""


@experiments.command("create")
@click.argument("name")
@click.argument("challenger")
@click.option("--champion", default=None, help="Champion version (default: the production one).")
@click.option(
    "--mode",
    type=click.Choice(["split", "shadow"]),
    default="split",
    show_default=True,
    help="split: heaters by a stable hash of their id; shadow: every heater runs both.",
)
@click.option(
    "--percent",
    "challenger_percent",
    type=click.IntRange(0, 100),
    default=50,
    show_default=True,
    help="Share of heaters on the challenger (split).",
)
@click.option(
    "--effect",
    "min_detectable_effect",
    type=float,
    default=None,
    help="Smallest improvement worth finding, in the metric's units (default per metric).",
)
@click.option(
    "--alpha", type=float, default=0.05, show_default=True, help="False-positive rate, however often one looks."
)
@click.option("--power", type=float, default=0.8, show_default=True)
@click.option("--planned", type=click.IntRange(min=2), default=None, help="Observations per arm (default: from power).")
@click.option(
    "--guardrail",
    "guardrail_pairs",
    multiple=True,
    metavar="NAME=NUMBER",
    help=f"Override a guardrail; defaults {DEFAULT_GUARDRAILS}.",
)
@click.option("--gateway", "gateway_ids", multiple=True, help="Run on these gateways only (default: all running NAME).")
@reason_option
@data_dir_option
def create_command(
    name: str,
    challenger: str,
    champion: str | None,
    mode: str,
    challenger_percent: int,
    min_detectable_effect: float | None,
    alpha: float,
    power: float,
    planned: int | None,
    guardrail_pairs: tuple[str, ...],
    gateway_ids: tuple[str, ...],
    reason: str,
    data_dir: Path | None,
) -> None:
    """Plan an experiment of CHALLENGER against NAME's champion (a draft until started)."""
    with _service(data_dir) as service:
        experiment = service.create(
            name,
            challenger,
            actor=service.config.actor,
            champion_version=champion,
            mode=mode,
            challenger_percent=challenger_percent,
            min_detectable_effect=min_detectable_effect,
            alpha=alpha,
            power=power,
            planned=planned,
            guardrails=_guardrails(guardrail_pairs),
            gateway_ids=list(gateway_ids) or None,
            reason=reason,
        )
        click.echo(
            f"Created {experiment['experiment_id']}: {name} {experiment['challenger_version']} against "
            f"{experiment['champion_version']}, {mode}, {experiment['metric']}, "
            f"{experiment['planned_per_arm']} observations planned per arm."
        )


@experiments.command("start")
@click.argument("experiment_id")
@reason_option
@data_dir_option
@mqtt_option
def start_command(experiment_id: str, reason: str, data_dir: Path | None, mqtt_url: str | None) -> None:
    """Direct the gateways to run the challenger beside the champion."""
    with _service(data_dir, mqtt_url, signing=True) as service:
        outcome = service.start(experiment_id, actor=service.config.actor, reason=reason)
        _report(outcome)


@experiments.command("stop")
@click.argument("experiment_id")
@click.option("--reason", required=True, help="Why; kept in the experiment's decision log.")
@data_dir_option
@mqtt_option
def stop_command(experiment_id: str, reason: str, data_dir: Path | None, mqtt_url: str | None) -> None:
    """Take the challenger off the gateways; the data stays and the experiment can still be concluded."""
    with _service(data_dir, mqtt_url, signing=True) as service:
        outcome = service.stop(experiment_id, actor=service.config.actor, reason=reason)
        _report(outcome)


@experiments.command("conclude")
@click.argument("experiment_id")
@reason_option
@click.option("--force", is_flag=True, help="End before the rule has an answer (needs --reason; the champion stays).")
@click.option(
    "--staged", is_flag=True, help="Roll a winning challenger out in stages (canary first), not everywhere at once."
)
@data_dir_option
@mqtt_option
def conclude_command(
    experiment_id: str, reason: str, force: bool, staged: bool, data_dir: Path | None, mqtt_url: str | None
) -> None:
    """Promote a winning challenger through the registry (or start its staged rollout), or take it off."""
    with _service(data_dir, mqtt_url, signing=True) as service:
        actor = service.config.actor
        outcome = service.conclude(experiment_id, actor=actor, reason=reason, force=force, promote=not staged)
        experiment = outcome.experiment
        _report(outcome)
        if staged and experiment["decision"] == "challenger":
            from cloud.rollouts.automation import start_rollout

            record = start_rollout(
                service.config,
                service.db,
                experiment["model_name"],
                experiment["challenger_version"],
                actor=actor,
                reason=f"won experiment {experiment_id}",
                passphrase=service.rollout.passphrase,
            )
            click.echo(f"Started staged rollout {record.rollout_id}: 'iotsphere rollouts status {record.rollout_id}'")


def _show(look: dict[str, Any]) -> None:
    experiment = look["experiment"]
    click.echo(
        f"{experiment['experiment_id']} {experiment['model_name']}: {experiment['challenger_version']} against "
        f"{experiment['champion_version']} ({experiment['mode']}), {experiment['status']}, "
        f"{experiment['metric']} (lower is better), {experiment['planned_per_arm']} planned per arm"
    )
    for arm, figures in (look["arms"] or {}).items():
        interval = figures["interval"]
        shown = f"{figures['mean']:.4g} [{interval[0]:.4g}, {interval[1]:.4g}]" if interval else "-"
        latency = f"{figures['latency_p95_ms']:.2f} ms" if figures["latency_p95_ms"] is not None else "-"
        click.echo(
            f"  {arm:<10} v{figures['version']}: n={figures['n']} {shown}; p95 latency {latency} over "
            f"{figures['batches']} batches, "
            f"{figures['rejections']} rejection(s), {figures['rollbacks']} rollback(s), "
            f"{figures['failures']} failure report(s)"
        )
    test = look["sequential"]
    if test:
        click.echo(
            f"  difference {test['difference']:+.4g} [{test['low']:+.4g}, {test['high']:+.4g}] (always valid), "
            f"p = {test['p_value']:.4g}{', significant' if test['significant'] else ''}"
        )
    for breach in (look["guardrails"] or {}).get("breaches", []):
        click.echo(f"  guardrail breached: {breach}")
    if look["recommendation"]:
        click.echo(f"  recommendation: {look['recommendation']}")


@experiments.command("status")
@click.argument("experiment_id")
@click.option("--json", "as_json", is_flag=True, help="The whole look as JSON, with the decision log.")
@click.option(
    "--watch",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Look again every SECONDS until the experiment is concluded (Ctrl-C to leave).",
)
@data_dir_option
def status_command(experiment_id: str, as_json: bool, watch: float | None, data_dir: Path | None) -> None:
    """Per-arm metric with intervals, the sequential test, guardrails and what the rule recommends now."""
    with _service(data_dir) as service:
        while True:
            look = service.status(experiment_id)
            if as_json:
                echo_json(look)
            else:
                _show(look)
            if watch is None or look["experiment"]["status"] == Status.CONCLUDED:
                return
            time.sleep(watch)


@experiments.command("list")
@click.option("--status", "status_filter", type=click.Choice([s.value for s in Status]), default=None)
@click.option("--model", "model_name", default=None)
@json_option
@data_dir_option
def list_command(status_filter: str | None, model_name: str | None, as_json: bool, data_dir: Path | None) -> None:
    """Experiments, newest first."""
    with _service(data_dir) as service:
        found = service.store.list(Status(status_filter) if status_filter else None, model_name)
    if as_json:
        echo_json(found)
        return
    echo_table(
        ["ID", "MODEL", "CHALLENGER", "CHAMPION", "MODE", "STATUS", "DECISION", "CREATED", "BY"],
        [
            (
                e["experiment_id"],
                e["model_name"],
                e["challenger_version"],
                e["champion_version"],
                e["mode"],
                e["status"],
                e["decision"] or "-",
                e["created_at"],
                e["created_by"],
            )
            for e in found
        ],
    )
