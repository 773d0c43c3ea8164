"""``iotsphere demo``: the whole loop on this machine in about two minutes."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from iotsphere.demo.options import ActTwoOptions, DemoOptions

_DEFAULTS = DemoOptions()
_ACT_TWO = ActTwoOptions()


def _quiet_libraries() -> None:
    """The demo prints its own story; library INFO lines (edge events, uvicorn, amqtt) would drown it."""
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("amqtt").setLevel(logging.ERROR)  # logs each message it drops for a departed client


@click.command("demo")
@click.option(
    "--duration",
    type=click.FloatRange(min=1),
    default=_DEFAULTS.duration_s,
    show_default=True,
    help="Real seconds the fleet runs after the gateways start.",
)
@click.option(
    "--gateways",
    type=click.IntRange(min=1),
    default=_DEFAULTS.gateways,
    show_default=True,
    help="Gateways, each an edge agent with its own data folder and API key.",
)
@click.option(
    "--heaters",
    type=click.IntRange(min=1),
    default=_DEFAULTS.heaters,
    show_default=True,
    help="Simulated heaters per gateway.",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=_DEFAULTS.speed,
    show_default=True,
    help="Simulated seconds per real second.",
)
@click.option(
    "--summary-json",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the final summary to this JSON file.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A fresh folder for everything the demo makes (default: var/demo-<UTC time>).",
)
@click.option(
    "--history-heaters",
    type=click.IntRange(min=1),
    default=_DEFAULTS.history_heaters,
    show_default=True,
    help="Heaters in the cold-start history.",
)
@click.option(
    "--history-days",
    type=click.IntRange(min=2),
    default=_DEFAULTS.history_days,
    show_default=True,
    help="Days of cold-start history.",
)
@click.option(
    "--telemetry",
    type=click.Choice(["in-process", "mqtt"]),
    default="in-process",
    show_default=True,
    help="How heater readings reach the agents: in process, or over MQTT on the site topics (needs a broker "
    "that carries sites × heaters × speed / 60 messages a second).",
)
@click.option(
    "--embedded-broker",
    is_flag=True,
    help="Use the embedded broker (amqtt) even where IOTSPHERE_MQTT_URL or a Mosquitto on 127.0.0.1:1883 answers.",
)
@click.option(
    "--world-change/--no-world-change",
    default=True,
    show_default=True,
    help="Act two after the loop closes: the world changes, drift triggers retraining, the challenger is A/B "
    "tested and rolled out in stages.",
)
@click.option(
    "--act-two-budget",
    type=click.FloatRange(min=1),
    default=_ACT_TWO.budget_s,
    show_default=True,
    help="Real seconds act two may take; when they run out it reports the step it was waiting on.",
)
@click.option(
    "--act-two-speed",
    type=click.FloatRange(min=0, min_open=True),
    default=_ACT_TWO.speed,
    show_default=True,
    help="Simulated seconds per real second in act two (the CPU may give less: the fleet then lags).",
)
@click.option(
    "--serve",
    is_flag=True,
    help="After the summary, keep the gateways, the cloud and its dashboard running until Ctrl-C, to open the "
    "pages on the live system.",
)
def demo_command(
    duration: float,
    gateways: int,
    heaters: int,
    speed: float,
    summary_json: Path | None,
    data_dir: Path | None,
    history_heaters: int,
    history_days: int,
    telemetry: str,
    embedded_broker: bool,
    world_change: bool,
    act_two_budget: float,
    act_two_speed: float,
    serve: bool,
) -> None:
    """Cold-start training, signed rollout to simulated gateways, live predictions, the API answering.

    Uses the broker IOTSPHERE_MQTT_URL names, else the Mosquitto on 127.0.0.1:1883 if it answers, else the
    embedded MQTT broker (amqtt). Exits 1 if the loop did not
    close (a gateway did not activate a model, or the cloud received none of its predictions), 130 on Ctrl-C.
    """
    from iotsphere.demo.run import EXPECTED_FAILURES, run_demo  # here, not at import: the demo loads everything

    _quiet_libraries()
    options = DemoOptions(
        duration_s=duration,
        gateways=gateways,
        heaters=heaters,
        speed=speed,
        data_dir=data_dir,
        summary_json=summary_json,
        history_heaters=history_heaters,
        history_days=history_days,
        telemetry_over_mqtt=telemetry == "mqtt",
        embedded_broker=embedded_broker,
        world_change=ActTwoOptions(budget_s=act_two_budget, speed=act_two_speed) if world_change else None,
        serve_s=float("inf") if serve else None,
    )
    try:
        summary = run_demo(options, echo=click.echo)
    except EXPECTED_FAILURES as exc:
        raise click.ClickException(f"the demo stopped: {exc}") from exc
    if summary["interrupted"]:
        sys.exit(130)
    if not summary["ok"]:
        raise click.ClickException("the loop did not close: " + "; ".join(summary["problems"]))
    click.echo("The loop closed: every gateway runs the three signed models and the cloud serves their predictions.")
    act_two = summary["act_two"]
    if act_two and act_two["completed"]:
        rollout = act_two["rollout"]
        click.echo(
            f"Act two closed: after the world changed, component_failure version {rollout['version']} won its A/B "
            "test and was rolled out in stages to production."
        )
    elif act_two:
        click.echo(f"Act two did not complete: {act_two.get('stopped')}")
