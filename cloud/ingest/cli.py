"""``iotsphere cloud ingest``: run only the MQTT ingest worker, e.g. one more worker of a shared group."""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

import click

from cloud.config import CloudConfig
from cloud.ingest.worker import DEFAULT_CLIENT_ID, DEFAULT_SHARED_GROUP, IngestStats, IngestWorker


@click.command("ingest")
@click.option("--mqtt", "mqtt_url", default=None, help="Broker URL (default: $IOTSPHERE_MQTT_URL or the local one).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cloud state folder (default: $IOTSPHERE_DATA_DIR or var/cloud).",
)
@click.option("--prefix", default=None, help="Topic prefix (default: $IOTSPHERE_TOPIC_PREFIX or iotsphere/v1).")
@click.option(
    "--client-id",
    default=DEFAULT_CLIENT_ID,
    show_default=True,
    help="Names the broker session that keeps messages while the worker is down: one per worker.",
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
    client_id: str,
    no_shared: bool,
    mqtt5: bool,
    connect_timeout: float,
    stats_every: float,
) -> None:
    """Store what gateways send (features, predictions, outcomes, status, events) until Ctrl-C or SIGTERM."""
    config = CloudConfig()
    overrides = {"data_dir": data_dir, "mqtt_url": mqtt_url, "topic_prefix": prefix}
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
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
