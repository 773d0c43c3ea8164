"""Options every cloud command shares, and the CloudConfig they select."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from cloud.config import CloudConfig

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cloud state folder (default: $IOTSPHERE_DATA_DIR or var/cloud).",
)

mqtt_option = click.option(
    "--mqtt", "mqtt_url", default=None, help="Broker URL (default: $IOTSPHERE_MQTT_URL or mqtt://127.0.0.1:1883)."
)


def config_from_options(data_dir: Path | None, mqtt_url: str | None = None) -> CloudConfig:
    config = CloudConfig() if data_dir is None else CloudConfig(data_dir=data_dir)
    return dataclasses.replace(config, mqtt_url=mqtt_url) if mqtt_url else config
