"""``iotsphere sim``: generate the training history, or run a gateway's heaters live over MQTT."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from shared.mqtt_url import shown as shown_mqtt
from shared.setting_defaults import from_settings, mqtt_url_option

if TYPE_CHECKING:
    from firmware_sim.world_change import WorldChange

_CHANGE_DEFAULTS = {"inlet_shift_k": -6.0, "inlet_ramp_days": 5.0, "new_anode_share": 0.3}


def world_change_options(command: Callable) -> Callable:
    """``--change-at`` and what changes then: colder inlet water, a new anode type on a share of heaters."""
    options = [
        click.option(
            "--change-at",
            type=click.FloatRange(min=0),
            default=None,
            help="Change the world this many simulated days after the start (default: no change).",
        ),
        click.option(
            "--inlet-shift-k",
            type=click.FloatRange(-15, 15),
            default=None,
            help=f"With --change-at: inlet water shift in K [default: {_CHANGE_DEFAULTS['inlet_shift_k']:g}].",
        ),
        click.option(
            "--inlet-ramp-days",
            type=click.FloatRange(min=0),
            default=None,
            help="With --change-at: days the inlet shift ramps in over "
            f"[default: {_CHANGE_DEFAULTS['inlet_ramp_days']:g}].",
        ),
        click.option(
            "--new-anode-share",
            type=click.FloatRange(0, 1),
            default=None,
            help="With --change-at: share of heaters fitted with the fast-wearing anode (device type + '-al') "
            f"[default: {_CHANGE_DEFAULTS['new_anode_share']:g}].",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def world_change(change_at: float | None, **settings: float | None) -> WorldChange | None:
    """The change the options ask for; the settings without ``--change-at`` are a usage error."""
    from firmware_sim.world_change import WorldChange

    given = {name: value for name, value in settings.items() if value is not None}
    if change_at is None:
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise click.UsageError(f"{flags}: these set what changes, so give --change-at DAYS too")
        return None
    try:
        return WorldChange(at_days=change_at, **(_CHANGE_DEFAULTS | given))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def calibration_option(command: Callable) -> Callable:
    """``--calibration``: how the fleet fails and how noisy it is (firmware_sim.calibration)."""
    from firmware_sim.calibration import CALIBRATIONS, DEFAULT_CALIBRATION

    return click.option(
        "--calibration",
        "calibration_name",
        type=click.Choice(list(CALIBRATIONS)),
        default=DEFAULT_CALIBRATION.name,
        show_default=True,
        help="field: failure mix, ages and noise of real heaters (evaluate models on it); accelerated: "
        "failures about three times as often, clear signatures, clean telemetry (the demo's fast fleet).",
    )(command)


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
@click.option(
    "--alert-share",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of the faults that warn which an alert catches: a technician replaces the worn part before it "
    "fails, hiding the failure (0: a fleet nobody watches, as the field calibration's figures assume).",
)
@calibration_option
@world_change_options
def history_command(
    heaters: int,
    days: int,
    seed: int,
    start: datetime | None,
    window_every_hours: int,
    out: Path,
    alert_share: float,
    calibration_name: str,
    change_at: float | None,
    **change_settings: float | None,
) -> None:
    """Simulate a fleet and save its feature rows, usage labels and failure events."""
    from firmware_sim.calibration import calibration
    from firmware_sim.dispatch import AlertDispatch
    from firmware_sim.history import generate_history

    change = world_change(change_at, **change_settings)
    try:  # before simulating: a folder that cannot be made must not cost the simulation's time
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.BadParameter(f"cannot make the folder {out.parent}: {exc.strerror}", param_hint="--out") from exc

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
            change=change,
            calibration=calibration(calibration_name),
            dispatch=AlertDispatch(alert_share) if alert_share else None,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    history.save(out)
    seconds = time.perf_counter() - began
    click.echo(f"wrote {out}: {len(history.features)} rows of {len(history.feature_names)} features")
    click.echo(
        f"failures: {len(history.failures)} ({', '.join(f'{k} {v}' for k, v in history.failure_counts().items())})"
    )
    if alert_share:
        click.echo(f"replaced after an alert, before failing: {len(history.preventive)} worn parts")
    click.echo(calibration(calibration_name).describe())
    if change is not None:
        fitted = sum(t.endswith(change.device_type_suffix) for t in history.device_types)
        click.echo(
            f"world change from day {change.at_days:g}: inlet {change.inlet_shift_k:+g} K over "
            f"{change.inlet_ramp_days:g} days, new anode on {fitted} heaters"
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
@mqtt_url_option
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
@calibration_option
@world_change_options
def run_command(
    gateway: str,
    heaters: int,
    speed: float,
    mqtt_url: str,
    seed: int,
    duration: float | None,
    topic_root: str,
    calibration_name: str,
    change_at: float | None,
    **change_settings: float | None,
) -> None:
    """Publish live telemetry of a gateway's heaters in accelerated time (QoS 1)."""
    from firmware_sim.calibration import calibration
    from firmware_sim.live import Fleet, publish

    change = world_change(change_at, **change_settings)
    chosen = calibration(calibration_name)
    try:
        fleet = Fleet(gateway, heaters, seed=seed, change=change, calibration=chosen)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"{heaters} heaters of {gateway} → {shown_mqtt(mqtt_url)} at {speed:g}x; {chosen.describe()}", err=True)
    if change is not None:
        click.echo(f"world change from {fleet.simulator.change_start:%Y-%m-%d %H:%M} UTC (simulated)", err=True)
    try:
        stats = publish(fleet, mqtt_url, speed, duration_s=duration, topic_root=topic_root)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        raise click.ClickException(f"cannot reach the broker at {shown_mqtt(mqtt_url)}: {exc}") from exc
    click.echo(
        f"published {stats.published} readings ({stats.failed} failed) over {stats.minutes} simulated minutes; "
        f"{len(stats.failures)} failures",
        err=True,
    )


@sim.command("load")
@click.option("--gateways", type=click.IntRange(min=1), required=True, help="Gateways whose uplink to publish.")
@click.option(
    "--heaters-per-gateway",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Heaters behind each gateway: feature rows and predictions per hourly batch (at most 166: one batch).",
)
@click.option(
    "--rate",
    default="1",
    show_default=True,
    help="Simulated seconds per real second (60 or 60x: an hour's traffic a minute), or messages per real second "
    "of the whole fleet (500/s).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Real seconds of traffic to publish (default: until interrupted).",
)
@mqtt_url_option
@click.option(
    "--prefix", default=from_settings("topic_prefix"), show_default=True, help="Topic prefix the cloud ingests."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: same seed, same messages.")
@click.option(
    "--every",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds between progress lines (messages and rows sent, per second).",
)
@click.option(
    "--retain/--no-retain",
    default=True,
    show_default=True,
    help="Publish status retained, as agents do (--no-retain leaves nothing on a shared broker).",
)
def load_command(
    gateways: int,
    heaters_per_gateway: int,
    rate: str,
    duration: float | None,
    mqtt_url: str,
    prefix: str,
    seed: int,
    every: float,
    retain: bool,
) -> None:
    """Publish the uplink of many gateways (features, predictions, status, events) at their agents' rates."""
    import signal

    from firmware_sim.load import LoadGenerator, LoadProfile, parse_rate

    try:
        profile = LoadProfile(gateways, heaters_per_gateway)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--heaters-per-gateway") from exc
    try:
        multiplier = parse_rate(rate, profile)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--rate") from exc
    generator = LoadGenerator(profile, mqtt_url, multiplier, prefix=prefix, seed=seed, retain_status=retain)
    click.echo(
        f"{gateways} gateways × {heaters_per_gateway} heaters → {shown_mqtt(mqtt_url)} at {multiplier:g}x: "
        f"{profile.messages_per_second() * multiplier:,.1f} msg/s, {profile.rows_per_second() * multiplier:,.1f} "
        "rows/s expected (Ctrl-C stops)",
        err=True,
    )

    def interrupted(*_) -> None:
        """The first Ctrl-C stops after the broker acknowledged what was sent; a second one ends at once."""
        generator.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, interrupted)
    try:
        stats = generator.run(duration, report=lambda s: click.echo(s.line(), err=True), every_s=every)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        raise click.ClickException(f"cannot reach the broker at {shown_mqtt(mqtt_url)}: {exc}") from exc
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    by_channel = ", ".join(f"{channel} {count}" for channel, count in sorted(stats.messages.items()))
    click.echo(
        f"sent {stats.sent} messages ({by_channel}), {stats.sent_rows} rows, {stats.failed} failed, "
        f"{stats.behind_s:.1f} s behind at the end",
        err=True,
    )
    if stats.failed:
        sys.exit(1)
