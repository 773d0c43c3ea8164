"""``iotsphere feedback``: record an outcome or a rating of a prediction from the command line."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click
from pydantic import ValidationError

from cloud.cli_options import config_from_options, data_dir_option
from cloud.feedback import ActualOutcome, InvalidFeedback, PredictionFeedbackService, Recorded, UnknownPrediction
from cloud.storage import open_database
from shared.messages import Component, FeedbackSource, OutcomeResult


def _run(data_dir: Path | None, record: Callable[[PredictionFeedbackService, str], Recorded]) -> None:
    """Open the database, record as the configured actor (the service audits it), say whether it was new.

    Usage errors exit 2 with the reason.
    """
    config = config_from_options(data_dir)
    db = open_database(config.database_url)
    try:
        recorded = record(PredictionFeedbackService(db), config.actor)
    except (UnknownPrediction, InvalidFeedback, ValidationError) as exc:
        raise click.UsageError(str(exc)) from exc
    finally:
        db.close()
    click.echo(f"{'recorded' if recorded.created else 'already recorded'}: {recorded.id}")


def _choice(enum: type) -> click.Choice:
    return click.Choice([member.value for member in enum])


@click.group("feedback")
def feedback() -> None:
    """Record outcomes and ratings of predictions."""


@feedback.command("outcome")
@click.argument("prediction_id")
@click.option("--source", type=_choice(FeedbackSource), default="technician", show_default=True)
@click.option("--component", type=_choice(Component), help="The component the finding is about.")
@click.option("--result", type=_choice(OutcomeResult), help="What was found (failed, ok, replaced).")
@click.option("--value", type=float, help="A measured value, e.g. litres drawn in the next 24 h.")
@click.option("--observed-at", type=click.DateTime(), help="When, in UTC (default: now).")
@click.option("--technician", help="Who observed it.")
@click.option("--notes", help="Free text; encrypted at rest.")
@data_dir_option
def outcome_command(
    prediction_id: str,
    source: str,
    component: str | None,
    result: str | None,
    value: float | None,
    observed_at: datetime | None,
    technician: str | None,
    notes: str | None,
    data_dir: Path | None,
) -> None:
    """Record what actually happened after PREDICTION_ID; the same finding twice is stored once."""
    when = observed_at.replace(tzinfo=observed_at.tzinfo or UTC) if observed_at else None

    def record(service: PredictionFeedbackService, actor: str) -> Recorded:
        fields = {"component": component, "result": result, "value": value, "observed_at": when}
        outcome = ActualOutcome(**fields, technician=technician, notes=notes)
        return service.record_prediction_outcome(prediction_id, outcome, source, actor=actor)

    _run(data_dir, record)


@feedback.command("rate")
@click.argument("prediction_id")
@click.argument("rating", type=int)
@click.option("--comments", help="Free text; encrypted at rest.")
@click.option("--by", "submitted_by", help="Who rates (part of the duplicate check).")
@data_dir_option
def rate_command(
    prediction_id: str, rating: int, comments: str | None, submitted_by: str | None, data_dir: Path | None
) -> None:
    """Rate PREDICTION_ID from 1 to 5; the same rating and comment twice counts once."""
    _run(
        data_dir,
        lambda service, actor: service.record_user_feedback(prediction_id, rating, comments, submitted_by, actor=actor),
    )
