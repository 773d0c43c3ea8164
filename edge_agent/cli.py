"""``iotsphere edge``: run a gateway's agent."""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from pathlib import Path

import click

from edge_agent.agent import AgentConfig, EdgeAgent
from shared.mqtt_url import DEFAULT_MQTT_URL
from shared.topics import DEFAULT_PREFIX


@click.group("edge")
def edge() -> None:
    """Run a gateway's edge agent: telemetry in, features and predictions out, signed updates."""


@edge.command("run")
@click.option("--gateway", "gateway_id", required=True, help="This gateway's id; its topics and director documents.")
@click.option(
    "--cloud",
    "cloud_url",
    envvar="IOTSPHERE_CLOUD_URL",
    help="Base URL of the cloud API (e.g. http://127.0.0.1:8080) serving the TUF repository; omit to run "
    "without updates. Env: IOTSPHERE_CLOUD_URL.",
)
@click.option(
    "--mqtt",
    "mqtt_url",
    envvar="IOTSPHERE_MQTT_URL",
    default=DEFAULT_MQTT_URL,
    show_default=True,
    help="Broker URL, mqtt://user:pass@host:port or mqtts://… Env: IOTSPHERE_MQTT_URL.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the outbox, installed models, TUF metadata and the accepted director sequence.",
)
@click.option(
    "--api-key",
    envvar="IOTSPHERE_GATEWAY_KEY",
    help="This gateway's API key (role gateway) for TUF downloads. Env: IOTSPHERE_GATEWAY_KEY.",
)
@click.option(
    "--trusted-root",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The cloud's TUF root.json, the trust anchor; needed on the first start only.",
)
@click.option(
    "--prefix",
    envvar="IOTSPHERE_TOPIC_PREFIX",
    default=DEFAULT_PREFIX,
    show_default=True,
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
) -> None:
    """Run until Ctrl-C or SIGTERM; everything bound for the cloud survives restarts in the outbox."""
    config = AgentConfig(
        gateway_id=gateway_id,
        data_dir=data_dir,
        mqtt_url=mqtt_url,
        cloud_url=cloud_url,
        api_key=api_key,
        trusted_root=trusted_root,
        prefix=prefix,
        feature_interval=timedelta(minutes=feature_interval),
        status_interval=status_interval,
    )
    try:
        agent = EdgeAgent(config)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    agent.start()
    click.echo(f"edge agent {gateway_id} running (data in {data_dir}); Ctrl-C to stop", err=True)
    stopping.wait()
    remaining = agent.stop()
    click.echo(
        f"edge agent {gateway_id} stopped; {remaining} message(s) kept in the outbox for the next start", err=True
    )
