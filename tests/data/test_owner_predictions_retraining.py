"""The ``predictions`` owner's evidence for automated retraining, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Connection, insert

from cloud.data import predictions

NAME = "component_failure"


def _prediction(prediction_id: str, arm: str = "champion", *, name: str = NAME, version: str = "1") -> dict:
    return {
        "prediction_id": prediction_id,
        "arm": arm,
        "device_id": "d1",
        "model_name": name,
        "model_version": version,
        "outputs_json": '{"element": 0.9}',
        "made_at": "2026-01-01T00:00:00.000000Z",
    }


def _outcome(outcome_id: str, received_at: str, **values) -> dict:
    row = dict.fromkeys(("prediction_id", "source", "component", "result", "value"))
    return {**row, "outcome_id": outcome_id, "device_id": "d1", "received_at": received_at, **values}


def test_labels_are_counted_by_when_they_were_received(owner_connection: Connection) -> None:
    rows = [
        _outcome("a", "2026-01-01T00:00:00.000000Z", source="technician", component="element", result="failed"),
        _outcome("b", "2026-01-02T00:00:00.000000Z", source="technician", component="element", result="ok"),
        _outcome("c", "2026-01-02T00:00:00.000000Z", source="technician", component="element"),  # no result
        _outcome("d", "2026-01-02T00:00:00.000000Z", source="sensor", value=41.5),
        _outcome("e", "2026-01-03T00:00:00.000000Z", source="sensor"),  # no value
    ]
    owner_connection.execute(insert(predictions.outcomes), rows)

    def count(after: str, until: str, sensor_values: bool) -> int:
        return predictions.labels_received(owner_connection, after, until, sensor_values=sensor_values)

    assert count("", "2026-01-09", sensor_values=False) == 2
    assert count("2026-01-01T00:00:00.000000Z", "2026-01-02T00:00:00.000000Z", sensor_values=False) == 1
    assert count("", "2026-01-09", sensor_values=True) == 1
    assert count("2026-01-02T00:00:00.000000Z", "2026-01-09", sensor_values=True) == 0


def test_low_ratings_are_counted_once_per_rating_of_the_models_predictions(owner_connection: Connection) -> None:
    # two arms of one prediction: its ratings still count once
    owner_connection.execute(
        insert(predictions.predictions),
        [_prediction("p1"), _prediction("p1", "challenger"), _prediction("p2", name="usage_pattern")],
    )
    ratings = [("f1", "p1", 1, "2026-01-01"), ("f2", "p1", 4, "2026-01-02"), ("f3", "p1", 2, "2026-01-05")]
    ratings.append(("f4", "p2", 1, "2026-01-02"))
    owner_connection.execute(
        insert(predictions.feedback),
        [{"feedback_id": f, "prediction_id": p, "rating": r, "submitted_at": at} for f, p, r, at in ratings],
    )

    assert predictions.rating_counts(owner_connection, NAME, "2026-01-01", "2026-01-05", 2) == (1, 2)
    assert predictions.rating_counts(owner_connection, NAME, "2026-01-01", "2026-01-06", 2) == (2, 3)
    assert predictions.rating_counts(owner_connection, NAME, "2026-02-01", "2026-03-01", 2) == (0, 0)


def test_technician_findings_are_those_about_the_models_champion_predictions(owner_connection: Connection) -> None:
    owner_connection.execute(
        insert(predictions.predictions),
        [_prediction("p1", version="3"), _prediction("p2", "challenger"), _prediction("p3", name="usage_pattern")],
    )
    finding = {"source": "technician", "component": "element", "result": "failed"}
    rows = [
        _outcome("a", "2026-01-02", prediction_id="p1", **finding),
        _outcome("b", "2026-01-02", prediction_id="p2", **finding),  # a challenger's
        _outcome("c", "2026-01-02", prediction_id="p3", **finding),  # another model's
        _outcome("d", "2026-01-09", prediction_id="p1", **finding),  # after the window
        _outcome("e", "2026-01-02", prediction_id="p1", source="sensor", value=1.0),
    ]
    owner_connection.execute(insert(predictions.outcomes), rows)

    found = predictions.technician_findings(owner_connection, NAME, "2026-01-01", "2026-01-05")
    assert [tuple(row) for row in found] == [("element", "failed", '{"element": 0.9}', "3")]
