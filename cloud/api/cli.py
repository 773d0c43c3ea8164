"""``iotsphere cloud serve`` and the API-key commands under ``iotsphere admin``."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import click

from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.cli_options import config_from_options, data_dir_option, mqtt_option
from cloud.cli_output import echo_json, echo_table, json_option
from cloud.config import CloudConfig
from cloud.storage import open_database
from shared.log_setup import set_role

log = logging.getLogger(__name__)


class Worker(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


@contextmanager
def _signals_absorbed() -> Iterator[None]:
    """Let a stop signal end ``server.run()`` and nothing more.

    uvicorn shuts down on SIGINT/SIGTERM and then raises the signal again for whatever handler was
    there before it: Python's default would turn SIGINT into KeyboardInterrupt and let SIGTERM kill
    the process before the workers are stopped. The handler set here takes that second signal instead.
    """
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


#: what ``cloud serve --role`` may run; ``all`` is every one of them
ROLES = ("api", "ingest", "training", "jobs")


def _workers(
    config: CloudConfig,
    roles: set[str],
    ingest: bool,
    publisher: bool,
    training: bool,
    rollouts: bool,
    alerts: bool,
    external_url: str,
) -> list[Worker]:
    """The background workers of ``roles`` the flags leave on; imported only when wanted.

    ``ingest`` and ``training`` workers scale out (any number of processes share the broker's subscription and the
    run queue); the ``jobs`` are periodic and each runs in one process at a time (``cloud.workers``' leader locks).
    """
    workers: list[Worker] = []
    if ingest and "ingest" in roles:
        from cloud.ingest import IngestWorker

        workers.append(IngestWorker(config))
    if training and "training" in roles:
        from cloud.pipeline.worker import TrainingWorker

        workers.append(TrainingWorker(config))
    if "jobs" not in roles:
        return workers
    if publisher:
        from cloud.releases.director_worker import DirectorPublisher

        workers.append(DirectorPublisher(config))
    if training:
        from cloud.pipeline.worker import RetrainingJobs

        workers.append(RetrainingJobs(config))
    if rollouts:
        from cloud.rollouts.worker import RolloutWorker

        workers.append(RolloutWorker(config))
    if alerts:
        from cloud.alerts.worker import AlertWorker

        workers.append(AlertWorker(config, external_url))
    from cloud.audit_checkpoints import AuditCheckpointWorker  # always: evidence is not optional
    from cloud.retention_worker import RetentionWorker  # always: day partitions ahead; retention if configured

    workers.append(AuditCheckpointWorker(config))
    workers.append(RetentionWorker(config))
    return workers


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@data_dir_option
@mqtt_option
@click.option(
    "--role",
    "roles",
    type=click.Choice([*ROLES, "all"]),
    multiple=True,
    default=("all",),
    show_default=True,
    help="What this process runs (repeat for several): api (REST API and dashboard), ingest (MQTT ingest worker), "
    "training (queued runs), jobs (director publisher, retraining checks and schedules, rollouts, alerts, audit "
    "checkpoints, day partitions and $IOTSPHERE_RETENTION_DAYS: each in one process at a time). Without api, "
    "--host/--port serve /metrics, /healthz, /readyz.",
)
@click.option("--ingest/--no-ingest", default=True, show_default=True, help="Run the MQTT ingest worker.")
@click.option("--publisher/--no-publisher", default=True, show_default=True, help="Run the director publisher.")
@click.option("--training/--no-training", default=True, show_default=True, help="Run the training worker.")
@click.option(
    "--rollouts/--no-rollouts", default=True, show_default=True, help="Run the worker advancing staged rollouts."
)
@click.option(
    "--alerts/--no-alerts",
    default=True,
    show_default=True,
    help="Keep the alert inbox current (and its webhook fed, with $IOTSPHERE_ALERT_WEBHOOK_URL).",
)
def serve_command(
    host: str,
    port: int,
    data_dir: Path | None,
    mqtt_url: str | None,
    roles: tuple[str, ...],
    ingest: bool,
    publisher: bool,
    training: bool,
    rollouts: bool,
    alerts: bool,
) -> None:
    """Serve the REST API, the dashboard and the TUF repository, with the ingest, director publisher, training,
    rollout and alert workers and a signed audit checkpoint every $IOTSPHERE_AUDIT_CHECKPOINT_INTERVAL seconds
    (default 3600). --role splits these over processes, any number of each against one PostgreSQL.

    Ctrl-C (or SIGTERM) stops the server first, then the workers in reverse order of starting, and exits 0.
    """
    import uvicorn  # here, not at import: the app and its server take seconds to load, --help none

    chosen = set(ROLES) if "all" in roles else set(roles)
    set_role("api" if "api" in chosen else "+".join(role for role in ROLES if role in chosen))
    config = config_from_options(data_dir, mqtt_url)
    if "api" in chosen:
        from cloud.api.app import create_app

        app = create_app(config)
    else:
        from cloud.observability.http import sidecar_app

        app = sidecar_app(config)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None))
    started: list[Worker] = []
    external_url = f"http://{host}:{port}"
    try:
        for worker in _workers(config, chosen, ingest, publisher, training, rollouts, alerts, external_url):
            try:
                worker.start()
            except Exception as exc:  # e.g. broker unreachable, wrong key passphrase: say which and why
                log.debug("starting %s failed", type(worker).__name__, exc_info=True)
                raise click.ClickException(f"could not start {type(worker).__name__}: {exc}") from exc
            started.append(worker)
            log.info("started %s", type(worker).__name__)
        with _signals_absorbed():
            server.run()  # returns once uvicorn has shut down on SIGINT/SIGTERM
    finally:
        for worker in reversed(started):
            worker.stop()
            log.info("stopped %s", type(worker).__name__)


@click.command("create-key")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True, help="What the key may do.")
@click.option("--name", required=True, help="Who or what holds the key, e.g. a person or 'gateway gw-001'.")
@click.option("--gateway", "gateway_id", default=None, help="The gateway a --role gateway key belongs to.")
@data_dir_option
def create_key_command(role: str, name: str, gateway_id: str | None, data_dir: Path | None) -> None:
    """Create an API key and print it once: only its hash is stored, so it cannot be shown again.

    The key alone goes to stdout, so KEY=$(iotsphere admin create-key ...) works; the notes go to stderr.
    """
    config = config_from_options(data_dir)
    db = open_database(config.database_url)
    try:
        issued = KeyStore(db).create(role, name, gateway_id, actor=config.actor)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    finally:
        db.close()
    click.echo(issued.token)
    scope = f" for gateway {issued.key.gateway_id}" if issued.key.gateway_id else ""
    click.echo(
        f"Created {issued.key.role.value} key {issued.key.key_id} ({issued.key.name}){scope}. "
        "Store it now: it is not shown again. Send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
        err=True,
    )


@click.command("list-keys")
@json_option
@data_dir_option
def list_keys_command(as_json: bool, data_dir: Path | None) -> None:
    """List API keys (never their secrets), revoked ones included."""
    db = open_database(config_from_options(data_dir).database_url)
    try:
        keys = KeyStore(db).list()
    finally:
        db.close()
    if as_json:
        echo_json(keys)
        return
    echo_table(
        ["KEY ID", "ROLE", "GATEWAY", "CREATED", "REVOKED", "NAME"],
        [(k.key_id, k.role.value, k.gateway_id or "-", k.created_at, k.revoked_at or "-", k.name) for k in keys],
    )


@click.command("revoke-key")
@click.argument("key_id")
@data_dir_option
def revoke_key_command(key_id: str, data_dir: Path | None) -> None:
    """Revoke an API key by its id; requests with it get 401 from then on."""
    config = config_from_options(data_dir)
    db = open_database(config.database_url)
    try:
        key = KeyStore(db).revoke(key_id, actor=config.actor)
    except LookupError as exc:
        raise click.ClickException(str(exc.args[0])) from exc
    finally:
        db.close()
    click.echo(f"Revoked {key.role.value} key {key.key_id} ({key.name}) at {key.revoked_at}.")
