"""Options every cloud command shares, and the CloudConfig they select."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import sqlite_utils

from cloud.config import CloudConfig
from cloud.storage import iso, open_database, utc_time
from cloud.stored_times import TimeSpan

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
    db = open_database(config_from_options(data_dir).database_url)
    try:
        yield db
    finally:
        db.close()


class UtcDateTime(click.ParamType):
    """ISO-8601 date or time; one without an offset is taken as UTC."""

    name = "ISO-8601"

    def convert(self, value, param, ctx) -> datetime:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        try:
            return utc_time(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


UTC_DATETIME = UtcDateTime()

NOW, DATA = "now", "data"


class AsOf(UtcDateTime):
    """``now``, ``data`` or an ISO-8601 time: where a window relative to "now" ends."""

    name = "now|data|ISO-8601"

    def convert(self, value, param, ctx) -> datetime | str:
        if isinstance(value, str) and value.strip().lower() in (NOW, DATA):
            return value.strip().lower()
        return super().convert(value, param, ctx)


def as_of_option(stored: str):
    """``--as-of``: the "now" a command's window ends at; ``data`` is just after the newest stored ``stored``."""
    return click.option(
        "--as-of",
        "as_of",
        type=AsOf(),
        default=NOW,
        show_default=True,
        help=f"When 'now' is: now, data (just after the newest stored {stored}: simulated history and `sim run` "
        "run ahead of the clock) or an ISO-8601 time.",
    )


def resolve_as_of(as_of: datetime | str, span: TimeSpan | None, stored: str) -> datetime:
    """The time ``--as-of`` names; ``data`` needs ``span``, the stored data's (``cloud.stored_times``)."""
    if as_of == NOW:
        return datetime.now(UTC)
    if as_of == DATA:
        if span is None:
            raise click.ClickException(f"--as-of data: no {stored} is stored yet")
        return span.last + timedelta(microseconds=1)  # windows end before their end: the newest row included
    return as_of


def note_data_elsewhere(span: TimeSpan | None, stored: str, end: datetime, start: datetime | None = None) -> None:
    """When the stored ``stored`` lies wholly after or before a window (``start`` None: all before ``end``), so the
    window found none of it, say so on stderr, where it lies and how to look there; nothing otherwise."""
    if span is None:
        return
    if span.first >= end:
        where = "after"
    elif start is not None and span.last < start:
        where = "before"
    else:
        return
    click.echo(
        f"note: no {stored} in this window, but the stored {stored} ({iso(span.first)} to {iso(span.last)}) lie "
        f"{where} it: --as-of data looks there",
        err=True,
    )
