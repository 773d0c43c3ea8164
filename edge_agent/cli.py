"""``iotsphere edge``: run a gateway's agent, log a technician's outcome into its outbox, pair a technician's phone."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import click
from pydantic import ValidationError

from edge_agent.config import AgentConfig, check_config
from edge_agent.device_index import DEVICES_FILE
from edge_agent.local_api import TOKEN_ENV, TOKEN_FILE
from edge_agent.pairing import DEFAULT_CODE_MINUTES, Pairing, code_terms
from edge_agent.serve import Handover, hand_over
from edge_agent.technician import OutcomeRefused, OutcomeRequest, UnknownDevice, open_log
from shared.messages import Component, OutcomeResult
from shared.private_files import private_data_dir
from shared.setting_defaults import from_settings, mqtt_url_option
from shared.topics import DEFAULT_PREFIX

MIB = 1024 * 1024
DEFAULTS = AgentConfig(gateway_id="defaults", data_dir=Path("."))


@click.group("edge")
def edge() -> None:
    """Run a gateway's edge agent: telemetry in, features and predictions out, signed updates; log outcomes."""


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=from_settings("edge_data_dir"),
    required=True,
    help="Folder for the outbox, installed models, TUF metadata and the accepted director sequence. "
    "Env: IOTSPHERE_EDGE_DATA_DIR.",
)


def outbox_bound_option(channel: str, default_bytes: int):
    return click.option(
        f"--outbox-{channel}-mb",
        type=click.FloatRange(min=0, min_open=True),
        default=default_bytes / MIB,
        show_default=True,
        help=f"MiB of {channel} kept while offline; past it the oldest are dropped and counted in the status "
        "(outcomes never are).",
    )


@edge.command("run")
@click.option("--gateway", "gateway_id", required=True, help="This gateway's id; its topics and director documents.")
@click.option(
    "--cloud",
    "cloud_url",
    default=from_settings("cloud_url"),
    help="Base URL of the cloud API (e.g. http://127.0.0.1:8080) serving the TUF repository; omit to run "
    "without updates. Env: IOTSPHERE_CLOUD_URL.",
)
@mqtt_url_option
@data_dir_option
@click.option(
    "--api-key",
    default=from_settings("gateway_key"),
    help="This gateway's API key (role gateway) for TUF downloads. Env: IOTSPHERE_GATEWAY_KEY.",
)
@click.option(
    "--trusted-root",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The cloud's TUF root.json, the trust anchor; needed on the first start only.",
)
@click.option(
    "--prefix",
    default=from_settings("topic_prefix"),
    show_default=DEFAULT_PREFIX,
    help="MQTT topic prefix shared with the cloud. Env: IOTSPHERE_TOPIC_PREFIX.",
)
@click.option(
    "--feature-interval",
    type=click.IntRange(min=1),
    default=60,
    show_default=True,
    help="Minutes of telemetry time between feature (and prediction) batches.",
)
@click.option(
    "--status-interval",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds between refreshes of the retained status.",
)
@outbox_bound_option("features", DEFAULTS.outbox_features_bytes)
@outbox_bound_option("predictions", DEFAULTS.outbox_predictions_bytes)
@click.option(
    "--horizon-days",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULTS.prediction_horizon.days,
    show_default=True,
    help="A technician's outcome naming no prediction links to the newest failure prediction this recent.",
)
@click.option(
    "--local-api-port",
    type=click.IntRange(min=0, max=65535),
    default=None,
    help="Serve the technician page (phones pair with a code from `edge pair`) and POST /outcomes on this port "
    f"(0: any free port); off when omitted. POST /outcomes needs the bearer token from {TOKEN_ENV} or the data "
    f"dir's {TOKEN_FILE} (created on first start).",
)
@click.option(
    "--local-api-host",
    default=DEFAULTS.local_api_host,
    show_default=True,
    help="Address the technician page and outcome API bind to; keep it on loopback unless the site network is trusted.",
)
# crash tests only (edge_agent.fault_points): read here with the other settings, so the agent never loads them
@click.option("--fault-point", default=from_settings("fault_point"), hidden=True)
def run_command(
    gateway_id: str,
    cloud_url: str | None,
    mqtt_url: str,
    data_dir: Path,
    api_key: str | None,
    trusted_root: Path | None,
    prefix: str,
    feature_interval: int,
    status_interval: float,
    outbox_features_mb: float,
    outbox_predictions_mb: float,
    horizon_days: float,
    local_api_port: int | None,
    local_api_host: str,
    fault_point: str | None,
) -> None:
    """Run until Ctrl-C or SIGTERM; everything bound for the cloud survives restarts in the outbox.

    Once the options and settings are checked, this process becomes the serving one (``edge_agent.serve``), which
    carries neither click nor the settings' libraries."""
    config = AgentConfig(
        gateway_id=gateway_id,
        data_dir=data_dir,
        mqtt_url=mqtt_url,
        mqtt_ca=from_settings("mqtt_ca")(),
        cloud_url=cloud_url,
        api_key=api_key,
        trusted_root=trusted_root,
        prefix=prefix,
        feature_interval=timedelta(minutes=feature_interval),
        status_interval=status_interval,
        outbox_features_bytes=int(outbox_features_mb * MIB),
        outbox_predictions_bytes=int(outbox_predictions_mb * MIB),
        prediction_horizon=timedelta(days=horizon_days),
        local_api_port=local_api_port,
        local_api_host=local_api_host,
        local_api_token=from_settings("edge_token")() if local_api_port is not None else None,
        fault_point=fault_point,
    )
    try:
        check_config(config)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    json_logs = from_settings("log_format")() == "json"
    hand_over(Handover(config, logging.getLogger().isEnabledFor(logging.DEBUG), json_logs))


@edge.command("outcome")
@data_dir_option
@click.option("--device", required=True, help="The heater's device id, as the gateway knows it.")
@click.option(
    "--component", required=True, type=click.Choice([c.value for c in Component]), help="The component inspected."
)
@click.option(
    "--result", required=True, type=click.Choice([r.value for r in OutcomeResult]), help="What the technician found."
)
@click.option("--notes", help="Free text; encrypted at rest on the gateway and in the cloud.")
@click.option("--technician", help="Who inspected the heater.")
@click.option(
    "--prediction-id",
    help="The prediction this outcome confirms or denies; default: the newest failure prediction for the "
    "heater within the agent's horizon.",
)
def outcome_command(
    data_dir: Path,
    device: str,
    component: str,
    result: str,
    notes: str | None,
    technician: str | None,
    prediction_id: str | None,
) -> None:
    """Log what a technician found; kept in the gateway's outbox and sent when it is online.

    Works with the agent running or stopped, online or not: the outcome waits in the outbox.
    """
    try:
        request = OutcomeRequest(
            device=device,
            component=component,
            result=result,
            notes=notes,
            technician=technician,
            prediction_id=prediction_id,
        )
        log = open_log(data_dir)
    except ValidationError as exc:
        raise click.ClickException("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())) from exc
    except OutcomeRefused as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        outcome = log.record(request)
    except (UnknownDevice, OutcomeRefused) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        log.close()
    linked = f"linked to prediction {outcome.prediction_id}" if outcome.prediction_id else "linked to no prediction"
    click.echo(f"outcome {outcome.outcome_id} for {device} queued for the cloud, {linked}")


@edge.command("pair")
@data_dir_option
@click.option(
    "--minutes",
    type=click.FloatRange(min=1, max=60),
    default=DEFAULT_CODE_MINUTES,
    show_default=True,
    help="How long the code stays valid.",
)
def pair_command(data_dir: Path, minutes: float) -> None:
    """Show a one-time code that pairs a technician's phone with the gateway's page (the agent may be running)."""
    if not (data_dir / DEVICES_FILE).exists():
        raise click.ClickException(f"no edge agent has run with the data dir {data_dir}: start it once first")
    pairing = Pairing(private_data_dir(data_dir))
    try:
        code = pairing.issue(minutes)
    finally:
        pairing.close()
    click.echo(f"pairing code {code}: {code_terms(minutes)}")
