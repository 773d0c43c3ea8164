"""Options every cloud command shares, and the CloudConfig they select."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import sqlite_utils

from cloud.config import CloudConfig
from cloud.storage import open_database

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cloud state folder (default: $IOTSPHERE_DATA_DIR or var/cloud).",
)

mqtt_option = click.option(
    "--mqtt", "mqtt_url", default=None, help="Broker URL (default: $IOTSPHERE_MQTT_URL or mqtt://127.0.0.1:1883)."
)


class NotInitialised(click.ClickException):
    """A command pointed at a folder ``cloud init`` never made: a typo must not become an empty new cloud."""

    def __init__(self, config: CloudConfig) -> None:
        folder = config.data_dir
        super().__init__(
            f"{folder} is not a cloud data folder: `cloud init` never ran there. Check --data-dir or "
            f"IOTSPHERE_DATA_DIR, or make it with: iotsphere cloud init --data-dir {folder}"
        )


def config_from_options(data_dir: Path | None, mqtt_url: str | None = None, *, initialised: bool = True) -> CloudConfig:
    """The config a command's options and the environment select; refused unless ``cloud init`` has made its data
    folder (``initialised=False`` only for ``cloud init`` itself)."""
    try:
        config = CloudConfig() if data_dir is None else CloudConfig(data_dir=data_dir)
    except ValueError as exc:  # shared.settings.SettingsError: a variable that does not fit, named
        raise click.ClickException(str(exc)) from None
    if initialised and not config.initialised:
        raise NotInitialised(config)
    return dataclasses.replace(config, mqtt_url=mqtt_url) if mqtt_url else config


@contextmanager
def cloud_database(data_dir: Path | None) -> Iterator[sqlite_utils.Database]:
    """The cloud database of ``--data-dir`` for one command, closed afterwards."""
    db = open_database(config_from_options(data_dir).database_path)
    try:
        yield db
    finally:
        db.conn.close()
