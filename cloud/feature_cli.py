"""``iotsphere features``: read a heater's features and build recorded training datasets from the command line."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import click

from cloud.cli_options import (
    UTC_DATETIME,
    as_of_option,
    config_from_options,
    data_dir_option,
    note_data_elsewhere,
    resolve_as_of,
)
from cloud.cli_output import echo_json, echo_table, json_option
from cloud.feature_store import FeatureStore
from cloud.storage import open_database
from cloud.stored_times import feature_span, where_features_are
from shared.messages import PredictionType

names_option = click.option(
    "--name", "names", multiple=True, help="A feature to include (repeat for several; default: all)."
)


def _store(data_dir: Path | None) -> FeatureStore:
    return FeatureStore(open_database(config_from_options(data_dir).database_url))


def _text(value: float) -> str:
    return "" if math.isnan(value) else f"{value:g}"


@click.group("features")
def features() -> None:
    """Read a heater's features and build point-in-time training datasets."""


@features.command("get")
@click.argument("device_id")
@names_option
@click.option("--start", type=UTC_DATETIME, help="First window end included.")
@click.option("--end", type=UTC_DATETIME, help="Window ends before this are included.")
@json_option
@data_dir_option
def get_command(
    device_id: str,
    names: tuple[str, ...],
    start: datetime | None,
    end: datetime | None,
    as_json: bool,
    data_dir: Path | None,
) -> None:
    """A heater's feature vectors, oldest first, as tab-separated rows under a header (empty where a value is
    null); "none" when there are none."""
    found = _store(data_dir).get_device_features(device_id, list(names) or None, (start, end))
    rows = [[window_end, *row] for window_end, row in zip(found.window_ends, found.values.tolist(), strict=True)]
    if as_json:
        echo_json([dict(zip(["window_end", *found.feature_names], row, strict=True)) for row in rows])
        return
    echo_table(
        ["window_end", *found.feature_names],
        ([window_end, *map(_text, values)] for window_end, *values in rows),
        separator="\t",
    )


@features.command("latest")
@click.argument("device_id")
@as_of_option("feature window")
@json_option
@data_dir_option
def latest_command(device_id: str, as_of: datetime | str, as_json: bool, data_dir: Path | None) -> None:
    """Each feature's newest value for a heater at or before --as-of, the window it came from and how stale it is."""
    store = _store(data_dir)
    span = feature_span(store.db)
    moment = resolve_as_of(as_of, span, "feature window")
    latest = store.latest_features(device_id, moment)
    note_data_elsewhere(span, "feature windows", moment)
    if as_json:
        echo_json(latest)
        return
    click.echo(f"as of {latest.as_of}")
    echo_table(
        ["FEATURE", "VALUE", "WINDOW_END", "AGE"],
        [
            (name, "none by then", None, None)
            if found is None
            else (name, f"{found.value:g}", found.window_end, f"{timedelta(seconds=round(found.age_seconds))}")
            for name, found in latest.values.items()
        ],
    )


@features.command("dataset")
@names_option
@click.option("--start", required=True, type=UTC_DATETIME, help="First window end included.")
@click.option("--end", required=True, type=UTC_DATETIME, help="Window ends before this are included.")
@click.option("--device-type", default=None, help="Only heaters of this type.")
@click.option("--horizon-days", default=14.0, show_default=True, help="A failure this soon after a row labels it.")
@click.option("--feature-set", "feature_set_version", default=None, help="Default: the set holding every feature.")
@click.option("--as-of", type=UTC_DATETIME, default=None, help="Outcomes known by then label rows (default: now).")
@click.option(
    "--prediction-type",
    type=click.Choice([t.value for t in PredictionType]),
    default=PredictionType.COMPONENT_FAILURE.value,
    show_default=True,
    help="What the labels are: failures within the horizon, litres a sensor measured, or failures to judge a score.",
)
@data_dir_option
def dataset_command(
    names: tuple[str, ...],
    start: datetime,
    end: datetime,
    device_type: str | None,
    horizon_days: float,
    feature_set_version: str | None,
    as_of: datetime | None,
    prediction_type: str,
    data_dir: Path | None,
) -> None:
    """Build a point-in-time labelled training dataset and record it; print its id, row count, hash and query."""
    store = _store(data_dir)
    dataset = store.get_training_dataset(
        list(names) or None,
        start,
        end,
        device_type=device_type,
        horizon=timedelta(days=horizon_days),
        feature_set_version=feature_set_version,
        as_of=as_of,
        prediction_type=PredictionType(prediction_type),
    )
    record = dataset.record
    echo_json(
        {
            "dataset_id": record.dataset_id,
            "row_count": record.row_count,
            "content_hash": record.content_hash,
            "created_at": record.created_at,
            "query": record.query,
        }
    )
    if record.row_count == 0:
        kind = f" of device type {device_type}" if device_type else ""
        click.echo(
            f"warning: 0 rows: no heater{kind} has a feature window ending in [{start.isoformat()}, "
            f"{end.isoformat()}); {where_features_are(store.db)}",
            err=True,
        )
