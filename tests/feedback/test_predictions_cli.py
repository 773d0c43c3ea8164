"""``iotsphere predictions list|show`` through click, on a real SQLite file seeded as ingest writes it."""

from __future__ import annotations

import json

import sqlite_utils
from click.testing import CliRunner

from cloud.config import CloudConfig
from cloud.feedback import ActualOutcome, PredictionFeedbackService
from iotsphere.cli import main
from shared.messages import Arm, PredictionType
from tests.api import seed


def _run(config: CloudConfig, *args: str):
    return CliRunner().invoke(main, ["predictions", *args, "--data-dir", str(config.data_dir)])


def test_list_filters_by_device_model_and_since_newest_first(config: CloudConfig, db: sqlite_utils.Database) -> None:
    seed.device(db, "wh-1")
    seed.device(db, "wh-2")
    old = seed.prediction(db, "wh-1", minutes=0)
    new = seed.prediction(db, "wh-1", minutes=60)
    usage = seed.prediction(db, "wh-1", minutes=30, prediction_type=PredictionType.USAGE_PATTERN)
    other = seed.prediction(db, "wh-2", minutes=90, arm=Arm.SHADOW)

    everything = json.loads(_run(config, "list", "--json").output)
    by_device = json.loads(_run(config, "list", "--device", "wh-1", "--model", "component_failure", "--json").output)
    since = json.loads(_run(config, "list", "--since", "2026-01-31T06:45:00", "--json").output)
    limited = json.loads(_run(config, "list", "--limit", "1", "--json").output)

    assert [p["prediction_id"] for p in everything] == [
        other.prediction_id,
        new.prediction_id,
        usage.prediction_id,
        old.prediction_id,
    ]
    assert [p["prediction_id"] for p in by_device] == [new.prediction_id, old.prediction_id]
    assert [p["prediction_id"] for p in since] == [other.prediction_id, new.prediction_id]
    assert [p["prediction_id"] for p in limited] == [other.prediction_id]
    assert everything[0]["arm"] == "shadow" and everything[1]["outputs"] == {"heating_element": 0.8, "thermostat": 0.05}


def test_list_prints_a_header_and_says_none_when_empty(config: CloudConfig, db: sqlite_utils.Database) -> None:
    seed.device(db, "wh-1")
    made = seed.prediction(db, "wh-1")

    listed = _run(config, "list")
    empty = _run(config, "list", "--device", "wh-nosuch")

    assert listed.exit_code == 0, listed.output
    header, row = listed.output.splitlines()
    assert header.split()[:3] == ["PREDICTION_ID", "MADE_AT", "DEVICE"]
    assert row.split()[0] == made.prediction_id and "heating_element=0.8" in row
    assert (empty.exit_code, empty.output) == (0, "none\n")


def test_show_gives_outputs_outcomes_and_feedback(config: CloudConfig, db: sqlite_utils.Database) -> None:
    seed.device(db, "wh-1")
    made = seed.prediction(db, "wh-1")
    service = PredictionFeedbackService(db)
    service.record_prediction_outcome(
        made.prediction_id, ActualOutcome(component="sediment", result="ok", notes="flushed"), "technician"
    )
    service.record_user_feedback(made.prediction_id, 4, "early", "alice")

    shown = json.loads(_run(config, "show", made.prediction_id, "--json").output)
    text = _run(config, "show", made.prediction_id).output

    assert [arm["outputs"] for arm in shown["arms"]] == [{"heating_element": 0.8, "thermostat": 0.05}]
    [outcome] = shown["outcomes"]
    [rating] = shown["feedback"]
    assert (outcome["component"], outcome["result"], outcome["notes"]) == ("sediment", "ok", "flushed")
    assert (rating["rating"], rating["comments"], rating["submitted_by"]) == (4, "early", "alice")
    assert "outcomes:" in text and "sediment" in text and "feedback:" in text and "alice" in text


def test_show_without_outcomes_says_none_and_an_unknown_id_is_refused(
    config: CloudConfig, db: sqlite_utils.Database
) -> None:
    seed.device(db, "wh-1")
    made = seed.prediction(db, "wh-1")

    shown = _run(config, "show", made.prediction_id)
    unknown = _run(config, "show", "nope-0000")

    assert shown.exit_code == 0, shown.output
    assert shown.output.split("outcomes:\n")[1].startswith("none\nfeedback:\nnone\n")
    assert unknown.exit_code == 1 and "unknown prediction 'nope-0000'" in unknown.output
