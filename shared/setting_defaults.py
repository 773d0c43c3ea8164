"""Click option defaults read from ``shared.settings`` when a command runs, so ``--help`` never imports it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from shared.topics import DEFAULT_MQTT_URL


def from_settings(name: str) -> Callable[[], Any]:
    """A click ``default=`` giving setting ``name`` (a secret's text) as the environment says when the command runs;
    a bad variable is a usage error naming it, not a traceback."""

    def default() -> Any:
        from shared.settings import SettingsError, secret, settings  # pydantic-settings costs ~0.1 s: not for --help

        try:
            value = getattr(settings(), name)
        except SettingsError as exc:
            raise click.UsageError(str(exc)) from None
        return secret(name) if hasattr(value, "get_secret_value") else value

    return default


#: ``--mqtt`` of the commands that reach the broker on their own (simulator, gateway): the configured URL by default
mqtt_url_option = click.option(
    "--mqtt",
    "mqtt_url",
    default=from_settings("mqtt_url"),
    show_default=f"$IOTSPHERE_MQTT_URL or {DEFAULT_MQTT_URL}",
    help="Broker URL, mqtt://user:pass@host:port or mqtts://...",
)
