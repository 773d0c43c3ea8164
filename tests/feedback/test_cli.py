"""``iotsphere feedback outcome|rate`` through click, on a real SQLite file."""

from __future__ import annotations

import sqlite_utils
from click.testing import CliRunner

from cloud.config import CloudConfig
from cloud.feedback import PredictionFeedbackService
from iotsphere.cli import main
from shared.messages import Prediction


def _run(config: CloudConfig, *args: str):
    return CliRunner().invoke(main, ["feedback", *args, "--data-dir", str(config.data_dir)])


def test_outcome_is_recorded_once(config: CloudConfig, db: sqlite_utils.Database, prediction: Prediction) -> None:
    args = ["outcome", prediction.prediction_id, "--component", "sediment", "--result", "ok", "--notes", "flushed"]

    first = _run(config, *args)
    again = _run(config, *args)

    assert first.exit_code == 0, first.output
    assert first.output.startswith("recorded: ") and again.output.startswith("already recorded: ")
    [outcome] = PredictionFeedbackService(db).outcomes(prediction.prediction_id, decrypt=True)
    assert (outcome.component, outcome.result, outcome.notes, outcome.source) == (
        "sediment",
        "ok",
        "flushed",
        "technician",
    )


def test_rate_validates_the_rating_and_the_prediction(
    config: CloudConfig, db: sqlite_utils.Database, prediction: Prediction
) -> None:
    good = _run(config, "rate", prediction.prediction_id, "5", "--comments", "spot on", "--by", "alice")
    too_high = _run(config, "rate", prediction.prediction_id, "6")
    unknown = _run(config, "rate", "nope-0000", "3")

    assert good.exit_code == 0, good.output
    assert (too_high.exit_code, unknown.exit_code) == (2, 2)
    assert "1 to 5" in too_high.output and "unknown prediction 'nope-0000'" in unknown.output
    [feedback] = PredictionFeedbackService(db).feedback(prediction.prediction_id, decrypt=True)
    assert (feedback.rating, feedback.comments, feedback.submitted_by) == (5, "spot on", "alice")
