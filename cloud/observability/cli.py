"""``iotsphere cloud health``: readiness (or liveness) as an exit code, for scripts, cron and Kubernetes exec probes.

With ``--url`` it asks a running process (the API's port, or ``cloud ingest``'s metrics address) what it checks of
itself, its worker loops and broker connection included. Without, it checks from here what any process needs:
the database answers, its migrations are applied, the broker accepts a connection.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import click

from cloud.cli_options import config_from_options, data_dir_option, mqtt_option
from cloud.cli_output import echo_json, json_option


def _local_checks(data_dir: Path | None, mqtt_url: str | None, timeout: float) -> list:
    from cloud.errors import TemporarilyUnavailable
    from cloud.observability.health import CheckResult, database_checks
    from cloud.releases.publisher import RetainedPublisher

    config = config_from_options(data_dir, mqtt_url, initialised=False)
    checks = database_checks(config.database_url)
    try:
        with RetainedPublisher(config.mqtt_url, timeout):
            broker = CheckResult("broker", True, "accepts a connection")
    except (TemporarilyUnavailable, OSError) as exc:
        broker = CheckResult("broker", False, str(exc))
    return [*checks, broker]


def _remote_checks(url: str, live: bool, timeout: float) -> list:
    from cloud.observability.health import CheckResult

    endpoint = f"{url.rstrip('/')}/{'healthz' if live else 'readyz'}"
    try:
        with urllib.request.urlopen(endpoint, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:  # 503 carries the failing checks
        body = exc.read()
    except (urllib.error.URLError, OSError) as exc:
        return [CheckResult("process", False, f"{endpoint} does not answer: {exc}")]
    try:
        return [CheckResult(**check) for check in json.loads(body)["checks"]]
    except (ValueError, KeyError, TypeError) as exc:
        return [CheckResult("process", False, f"{endpoint} answered something other than checks: {exc}")]


@click.command("health")
@click.option(
    "--url",
    default=None,
    help="Base URL of a running process to ask (e.g. http://127.0.0.1:8080, or cloud ingest's http://127.0.0.1:9464).",
)
@click.option("--live", is_flag=True, help="With --url: liveness (its worker loops pass) instead of readiness.")
@click.option(
    "--timeout", default=5.0, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Seconds per check."
)
@json_option
@data_dir_option
@mqtt_option
def health_command(
    url: str | None, live: bool, timeout: float, as_json: bool, data_dir: Path | None, mqtt_url: str | None
) -> None:
    """Exit 0 when ready (or live), 1 when not; one line per check, or --json.

    Without --url: the database answers, its migrations are applied, the broker accepts a connection.
    """
    if live and not url:
        raise click.UsageError("--live needs --url: liveness is a running process's")
    checks = _remote_checks(url, live, timeout) if url else _local_checks(data_dir, mqtt_url, timeout)
    ok = all(check.ok for check in checks)
    if as_json:
        echo_json({"ok": ok, "checks": [check.to_json() for check in checks]})
    else:
        for check in checks:
            click.echo(check.line())
    raise SystemExit(0 if ok else 1)
