"""``iotsphere predictions list|show``: find a prediction's id (for ``feedback outcome``) and what became of it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from cloud.cli_options import cloud_database, data_dir_option
from cloud.cli_output import echo_json, echo_table, json_option
from cloud.feedback import PredictionFeedbackService
from cloud.predictions import StoredPrediction, find_predictions


def _outputs(prediction: StoredPrediction) -> str:
    return " ".join(f"{name}={value:.3g}" for name, value in prediction.outputs.items())


@click.group("predictions")
def predictions() -> None:
    """Predictions gateways made for water heaters: list them, show one with its outcomes and feedback."""


@predictions.command("list")
@click.option("--device", "device_id", default=None, help="Only this water heater (device id).")
@click.option("--model", "model_name", default=None, help="Only this model name.")
@click.option("--since", type=click.DateTime(), default=None, help="Only predictions made at or after this UTC time.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many, newest first.")
@json_option
@data_dir_option
def list_command(
    device_id: str | None,
    model_name: str | None,
    since: datetime | None,
    limit: int,
    as_json: bool,
    data_dir: Path | None,
) -> None:
    """The newest predictions, every arm (champion, challenger, shadow)."""
    since_utc = since.replace(tzinfo=since.tzinfo or UTC) if since else None
    with cloud_database(data_dir) as db:
        found = find_predictions(db, device_id=device_id, model_name=model_name, since=since_utc, limit=limit)
    if as_json:
        echo_json(found)
        return
    echo_table(
        ["PREDICTION_ID", "MADE_AT", "DEVICE", "MODEL", "VERSION", "ARM", "OUTPUTS"],
        [
            (
                p.prediction_id,
                p.made_at.isoformat(),
                p.device_id,
                p.model_name,
                p.model_version,
                p.arm.value,
                _outputs(p),
            )
            for p in found
        ],
    )


@predictions.command("show")
@click.argument("prediction_id")
@json_option
@data_dir_option
def show_command(prediction_id: str, as_json: bool, data_dir: Path | None) -> None:
    """PREDICTION_ID with its outputs (each arm that made it), its outcomes and its ratings."""
    with cloud_database(data_dir) as db:
        arms = find_predictions(db, prediction_id=prediction_id, limit=None)
        if not arms:
            raise click.ClickException(f"unknown prediction {prediction_id!r}: no gateway has reported it")
        service = PredictionFeedbackService(db)
        outcomes = service.outcomes(prediction_id, decrypt=True)
        ratings = service.feedback(prediction_id, decrypt=True)
    if as_json:
        echo_json({"prediction_id": prediction_id, "arms": arms, "outcomes": outcomes, "feedback": ratings})
        return
    first = arms[0]
    click.echo(f"prediction {prediction_id}")
    click.echo(f"  device {first.device_id} ({first.device_type}) on gateway {first.gateway_id}")
    click.echo(f"  made at {first.made_at.isoformat()}, features up to {first.feature_window_end or 'unknown'}")
    click.echo("outputs:")
    echo_table(
        ["ARM", "MODEL", "VERSION", "LATENCY_MS", "OUTPUTS"],
        [(p.arm, p.model_name, p.model_version, f"{p.latency_ms:.2f}", _outputs(p)) for p in arms],
    )
    click.echo("outcomes:")
    echo_table(
        ["OBSERVED_AT", "SOURCE", "COMPONENT", "RESULT", "VALUE", "TECHNICIAN", "NOTES"],
        [
            (o.observed_at.isoformat(), o.source, o.component, o.result, o.value, o.technician, o.notes)
            for o in outcomes
        ],
    )
    click.echo("feedback:")
    echo_table(
        ["SUBMITTED_AT", "RATING", "BY", "COMMENTS"],
        [(f.submitted_at.isoformat(), f.rating, f.submitted_by, f.comments) for f in ratings],
    )
