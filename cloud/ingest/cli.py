"""``iotsphere cloud ingest``: run only the MQTT ingest worker, e.g. one more worker of a shared group."""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

import click

from cloud.cli_options import config_from_options, data_dir_option, mqtt_option
from cloud.data.urls import shown
from cloud.ingest.worker import (
    DEFAULT_SHARED_GROUP,
    HEARTBEAT_SECONDS,
    STALE_AFTER_SECONDS,
    IngestStats,
    IngestWorker,
)
from shared.log_setup import set_role
from shared.setting_defaults import from_settings


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
    "--heartbeat-interval",
    default=HEARTBEAT_SECONDS,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds between renewals of this worker's lease on its session (and looks for lapsed peers).",
)
@click.option(
    "--stale-after",
    default=STALE_AFTER_SECONDS,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds without renewal after which peers adopt a worker's session: they store what it queued and end "
    "it. A worker that stops for good delays its messages by at most this plus --heartbeat-interval plus the "
    "time to store its backlog.",
)
@click.option(
    "--retire",
    "retire_id",
    metavar="CLIENT_ID",
    default=None,
    help="Instead of running: end the session of the stopped worker CLIENT_ID for good, storing what it queued "
    "first (waits for its lease to lapse; refused as soon as that worker renews it, i.e. while it runs).",
)
@click.option(
    "--metrics-address",
    default=from_settings("ingest_metrics_address"),
    help="host:port to serve /metrics, /healthz and /readyz on, or off (default: $IOTSPHERE_INGEST_METRICS_ADDRESS "
    "or 127.0.0.1:9464; port 0 takes a free one).",
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
    heartbeat_interval: float,
    stale_after: float,
    retire_id: str | None,
    metrics_address: str,
    stats_every: float,
) -> None:
    """Store what gateways send (features, predictions, outcomes, status, events) until Ctrl-C or SIGTERM.

    Ctrl-C or SIGTERM keeps this worker's broker session, so a restart loses nothing; if the worker does not
    come back, the other workers of its shared group adopt the session after --stale-after seconds.
    """
    from cloud.observability.http import parse_address, serve_sidecar  # the web server: not for --help

    set_role("ingest")
    config = config_from_options(data_dir, mqtt_url)
    try:
        metrics_at = parse_address(metrics_address)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if prefix:
        config = dataclasses.replace(config, topic_prefix=prefix)
    try:
        worker = IngestWorker(
            config,
            client_id=retire_id or client_id,
            shared_group=None if no_shared else DEFAULT_SHARED_GROUP,
            mqtt5=mqtt5,
            heartbeat_interval=heartbeat_interval,
            stale_after=stale_after,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if retire_id:
        try:
            worker.retire(timeout=stale_after + heartbeat_interval + connect_timeout + 60)
        except ConnectionError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"ingest: session {retire_id} ended for good: {worker.stats.line()}")
        return
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as on Ctrl-C: store, acknowledge, disconnect

    def report(stats: IngestStats) -> None:
        click.echo(f"ingest {stats.line()}")

    try:
        worker.start(timeout=connect_timeout)
    except ConnectionError as exc:
        raise click.ClickException(str(exc)) from exc
    sidecar = None
    try:  # a SIGTERM while the metrics server starts stops the worker as cleanly as one during the run
        sidecar = serve_sidecar(config, metrics_at)
        click.echo(f"ingest: storing {worker.topic_filter} into {shown(config.database_url)} (Ctrl-C stops)")
        worker.run_forever(report, every=stats_every)
    except KeyboardInterrupt:
        worker.stop()
    finally:
        if sidecar is not None:
            sidecar.stop()
    report(worker.stats)
