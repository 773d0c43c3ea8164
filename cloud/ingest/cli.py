"""``iotsphere cloud ingest``: run only the MQTT ingest worker, e.g. one more worker of a shared group."""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

import click

from cloud.cli_options import config_from_options, data_dir_option, mqtt_option
from cloud.ingest.worker import DEFAULT_SHARED_GROUP, IngestStats, IngestWorker


@click.command("ingest")
@mqtt_option
@data_dir_option
@click.option("--prefix", default=None, help="Topic prefix (default: $IOTSPHERE_TOPIC_PREFIX or iotsphere/v1).")
@click.option(
    "--client-id",
    default=None,
    help="Names the broker session that keeps messages while the worker is down: one per worker "
    "(default: $IOTSPHERE_INGEST_CLIENT_ID or iotsphere-ingest).",
)
@click.option("--no-shared", is_flag=True, help="Subscribe without $share (for a broker that lacks it).")
@click.option("--mqtt5", is_flag=True, help="Speak MQTT 5 (session expiry, own in-flight window) instead of 3.1.1.")
@click.option(
    "--connect-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to reach the broker.",
)
@click.option(
    "--stats-every",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between stats lines.",
)
def ingest_command(
    mqtt_url: str | None,
    data_dir: Path | None,
    prefix: str | None,
    client_id: str | None,
    no_shared: bool,
    mqtt5: bool,
    connect_timeout: float,
    stats_every: float,
) -> None:
    """Store what gateways send (features, predictions, outcomes, status, events) until Ctrl-C or SIGTERM."""
    config = config_from_options(data_dir, mqtt_url)
    if prefix:
        config = dataclasses.replace(config, topic_prefix=prefix)
    worker = IngestWorker(
        config, client_id=client_id, shared_group=None if no_shared else DEFAULT_SHARED_GROUP, mqtt5=mqtt5
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as on Ctrl-C: store, acknowledge, disconnect

    def report(stats: IngestStats) -> None:
        click.echo(f"ingest {stats.line()}")

    try:
        worker.start(timeout=connect_timeout)
    except ConnectionError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"ingest: storing {worker.topic_filter} into {config.database_path} (Ctrl-C stops)")
    worker.run_forever(report, every=stats_every)
    report(worker.stats)
