"""``iotsphere drift``: check a model version for drift now (and record it), and read the recorded checks."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from cloud.cli_options import as_of_option, config_from_options, data_dir_option, note_data_elsewhere, resolve_as_of
from cloud.cli_output import echo_json, echo_table, json_option
from cloud.monitoring import DEFAULT_DRIFT_DAYS
from cloud.storage import from_iso, open_database
from cloud.stored_times import feature_span


def _summary(result: dict) -> list[str]:
    """A few lines a person reads; ``--json`` prints everything."""
    lines = [
        f"{result['model_name']} version {result['model_version']}: {result['status']} "
        f"({result['window']['start']} .. {result['window']['end']})"
    ]
    for name, segment in result["feature_drift"]["segments"].items():
        drifted = ", ".join(segment["drifted"]) or "none"
        lines.append(
            f"  features [{name}, vs {segment['reference']} reference]: {segment['status']}, "
            f"{segment['rows']:,} rows; drifted: {drifted}"
        )
    for finding in result["data_quality"]["findings"]:
        where = finding.get("feature") or finding.get("feature_set_version")
        lines.append(f"  data quality: {finding['check']} {where} {finding.get('segment', '')}".rstrip())
    performance = result["performance"]
    lines.append(f"  performance: {performance['status']} ({performance.get('outcomes', 0)} outcomes)")
    return lines


@click.group("drift")
def drift() -> None:
    """Feature drift, data quality and performance of model versions against their training reference."""


@drift.command("check")
@click.argument("model_name")
@click.option(
    "--days", type=click.IntRange(1, 365), default=DEFAULT_DRIFT_DAYS, show_default=True, help="Window length."
)
@click.option("--device-type", default=None, help="Only this device type's heaters and predictions.")
@click.option("--version", default=None, help="Version to check (default: production for the device type).")
@as_of_option("feature window")
@json_option
@data_dir_option
def check(
    model_name: str,
    days: int,
    device_type: str | None,
    version: str | None,
    as_of: datetime | str,
    as_json: bool,
    data_dir: Path | None,
) -> None:
    """Check MODEL_NAME over the --days before --as-of and record the check in the drift history."""
    # loaded here, not at import: the statistics (scipy, scikit-learn, onnx) would make --help take seconds
    from cloud.monitoring.drift import detect_model_drift, record_check

    config = config_from_options(data_dir)
    db = open_database(config.database_url)
    try:
        span = feature_span(db)
        now = resolve_as_of(as_of, span, "feature window")
        result = detect_model_drift(db, model_name, days=days, device_type=device_type, version=version, now=now)
        check_id = record_check(db, result, actor=config.actor)
    finally:
        db.close()
    note_data_elsewhere(span, "feature windows", from_iso(result["window"]["end"]), from_iso(result["window"]["start"]))
    if as_json:
        echo_json(result)
        return
    click.echo("\n".join([*_summary(result), f"recorded as {check_id}"]))


@drift.command("history")
@click.argument("model_name")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@json_option
@data_dir_option
def history(model_name: str, limit: int, as_json: bool, data_dir: Path | None) -> None:
    """Recorded drift checks of MODEL_NAME, newest first."""
    from cloud.monitoring.drift import drift_history  # not at import: see check

    config = config_from_options(data_dir)
    db = open_database(config.database_url)
    try:
        entries = drift_history(db, model_name, limit)
    finally:
        db.close()
    if as_json:
        echo_json(entries)
        return
    echo_table(
        ["ID", "CHECKED_AT", "VERSION", "DEVICE_TYPE", "STATUS", "PERFORMANCE", "QUALITY_FINDINGS", "DRIFTED"],
        [
            (
                e["id"],
                e["checked_at"],
                e["model_version"],
                e["device_type"] or "all",
                e["status"],
                e["performance_status"],
                e["quality_findings"],
                ", ".join(e["drifted"]) or "-",
            )
            for e in entries
        ],
        empty=f"none: no drift check of {model_name} has been recorded",
    )
