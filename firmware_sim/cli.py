"""``iotsphere sim``: generate the training history, or run a gateway's heaters live over MQTT."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from shared.mqtt_url import DEFAULT_MQTT_URL


@click.group(name="sim")
def sim() -> None:
    """Simulate water heaters: training history, live telemetry."""


@sim.command("history")
@click.option("--heaters", type=click.IntRange(min=1), default=1000, show_default=True, help="Fleet size.")
@click.option("--days", type=click.IntRange(min=1), default=180, show_default=True, help="Simulated days.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: same seed, same history.")
@click.option(
    "--start",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M"]),
    default=None,
    help="Simulated start (UTC). Default: so that the history ends at the start of today.",
)
@click.option(
    "--window-every-hours",
    type=click.IntRange(min=6),
    default=6,
    show_default=True,
    help="One feature row per heater every this many hours (a multiple of 6).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output .npz file.")
def history_command(
    heaters: int, days: int, seed: int, start: datetime | None, window_every_hours: int, out: Path
) -> None:
    """Simulate a fleet and save its feature rows, usage labels and failure events."""
    from firmware_sim.history import generate_history

    began = time.perf_counter()
    last = [0.0]

    def progress(done: float, total: int) -> None:
        if done - last[0] >= max(1.0, total / 50) or done >= total:
            last[0] = done
            click.echo(f"\rsimulated {done:.0f}/{total} days", err=True, nl=done >= total)

    try:
        history = generate_history(
            heaters,
            days,
            seed,
            start=start.replace(tzinfo=UTC) if start else None,
            window_every_hours=window_every_hours,
            progress=progress,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    history.save(out)
    seconds = time.perf_counter() - began
    click.echo(f"wrote {out}: {len(history.features)} rows of {len(history.feature_names)} features")
    click.echo(
        f"failures: {len(history.failures)} ({', '.join(f'{k} {v}' for k, v in history.failure_counts().items())})"
    )
    click.echo(f"{seconds:.1f} s ({heaters * days / seconds:,.0f} heater-days/s)")


@sim.command("run")
@click.option(
    "--gateway", required=True, help="Gateway id: telemetry goes to site/<gateway>/heaters/<device>/telemetry."
)
@click.option("--heaters", type=click.IntRange(min=1), default=20, show_default=True, help="Heaters at this site.")
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Simulated seconds per real second (60: one reading per heater per real second).",
)
@click.option(
    "--mqtt",
    "mqtt_url",
    default=lambda: os.environ.get("IOTSPHERE_MQTT_URL", DEFAULT_MQTT_URL),
    show_default=f"$IOTSPHERE_MQTT_URL or {DEFAULT_MQTT_URL}",
    help="Broker URL, mqtt://user:pass@host:port or mqtts://...",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the fleet.")
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop after this many real seconds (default: run until interrupted).",
)
@click.option(
    "--prefix",
    "topic_root",
    default="",
    help="Topic root put before site/... to isolate a run on a shared broker (the edge agent listens without one).",
)
def run_command(
    gateway: str, heaters: int, speed: float, mqtt_url: str, seed: int, duration: float | None, topic_root: str
) -> None:
    """Publish live telemetry of a gateway's heaters in accelerated time (QoS 1)."""
    from firmware_sim.live import Fleet, publish

    try:
        fleet = Fleet(gateway, heaters, seed=seed)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"{heaters} heaters of {gateway} → {mqtt_url} at {speed:g}x", err=True)
    try:
        stats = publish(fleet, mqtt_url, speed, duration_s=duration, topic_root=topic_root)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        raise click.ClickException(f"cannot reach the broker at {mqtt_url}: {exc}") from exc
    click.echo(
        f"published {stats.published} readings ({stats.failed} failed) over {stats.minutes} simulated minutes; "
        f"{len(stats.failures)} failures",
        err=True,
    )
