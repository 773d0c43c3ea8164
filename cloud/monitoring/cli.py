"""``iotsphere monitor``: model performance computed from outcomes, and reports (JSON, or one offline HTML file)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
import sqlite_utils

from cloud.cli_options import as_of_option, config_from_options, data_dir_option, note_data_elsewhere, resolve_as_of
from cloud.cli_output import echo_json
from cloud.monitoring.performance import (
    GROUP_DIMENSIONS,
    ModelPerformanceMonitor,
    generate_performance_report,
    resolve_period,
)
from cloud.monitoring.report import render_html
from cloud.storage import from_iso, open_database
from cloud.stored_times import prediction_span

period_option = click.option(
    "--period",
    "time_period",
    default="last_month",
    show_default=True,
    help="last_day, last_week, last_month or YYYY-MM-DD..YYYY-MM-DD (both days included).",
)


@contextmanager
def _database(data_dir: Path | None) -> Iterator[sqlite_utils.Database]:
    """The cloud database, closed when the command ends."""
    db = open_database(config_from_options(data_dir).database_url)
    try:
        yield db
    finally:
        db.close()


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=moment.tzinfo or UTC) if moment else None


@click.group("monitor")
def monitor() -> None:
    """Model performance in production: metrics from outcomes, ratings, latency and events; reports."""


@monitor.command("metrics")
@click.argument("model_name")
@period_option
@click.option("--start", type=click.DateTime(), help="Period start in UTC (with --end, instead of --period).")
@click.option("--end", type=click.DateTime(), help="Period end in UTC, exclusive.")
@click.option("--window", default=None, help="30m, 12h, 1d, 2w or all (default: the period's).")
@click.option(
    "--group-by",
    type=click.Choice(GROUP_DIMENSIONS),
    multiple=True,
    help="Split by these (repeat; default: all three).",
)
@click.option("--store", is_flag=True, help="Also store every figure as metric points (the dashboard's series).")
@as_of_option("prediction")
@data_dir_option
def metrics_command(
    model_name: str,
    time_period: str,
    start: datetime | None,
    end: datetime | None,
    window: str | None,
    group_by: tuple[str, ...],
    store: bool,
    as_of: datetime | str,
    data_dir: Path | None,
) -> None:
    """Print MODEL_NAME's metrics per version × device type × arm × window, as JSON (with the period used)."""
    if (start is None) != (end is None):
        raise click.ClickException("give --start and --end together, or neither (then --period applies)")
    with _database(data_dir) as db:
        span = prediction_span(db, model_name)
        period_start, period_end, period_window = resolve_period(time_period, resolve_as_of(as_of, span, "prediction"))
        if start and end:
            period_start, period_end = _utc(start), _utc(end)
        result = ModelPerformanceMonitor(db).compute_metrics(
            model_name, period_start, period_end, window or period_window, group_by or GROUP_DIMENSIONS, store=store
        )
    note_data_elsewhere(span, "predictions", period_end, period_start)
    echo_json(result)


@monitor.command("report")
@click.option("--model", "model_name", default=None, help="Only this model (default: every model with predictions).")
@period_option
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a self-contained HTML report (charts included) to this file instead of printing JSON.",
)
@as_of_option("prediction")
@data_dir_option
def report_command(
    model_name: str | None, time_period: str, html_path: Path | None, as_of: datetime | str, data_dir: Path | None
) -> None:
    """The performance report over --period up to --as-of: JSON on stdout, or one HTML file that opens with no
    network."""
    with _database(data_dir) as db:
        span = prediction_span(db, model_name)
        report = generate_performance_report(db, model_name, time_period, now=resolve_as_of(as_of, span, "prediction"))
    note_data_elsewhere(span, "predictions", from_iso(report["end"]), from_iso(report["start"]))
    if html_path is None:
        echo_json(report)
        return
    try:
        html_path.write_text(render_html(report), encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {html_path}: {exc}") from exc
    models = ", ".join(model["model_name"] for model in report["models"]) or "no model with predictions"
    click.echo(f"wrote {html_path} ({models}; {report['start']} to {report['end']})")
