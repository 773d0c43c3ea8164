"""The ``predictions`` owner's reads, outcomes and feedback on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, insert

from cloud.data import predictions as stored
from cloud.data.times import iso

START = datetime(2026, 1, 31, 6, tzinfo=UTC)


def _at(minutes: float) -> str:
    return iso(START + timedelta(minutes=minutes))


def _prediction(prediction_id: str, arm: str = "champion", **given: object) -> dict:
    row = {
        "prediction_id": prediction_id,
        "arm": arm,
        "device_id": "wh-1",
        "device_type": "tank-50",
        "prediction_type": "component_failure",
        "model_name": "component_failure",
        "model_version": "1",
        "outputs_json": json.dumps({"none": 0.75, "heating_element": 0.25}),
        "latency_ms": 2.0,
        "made_at": _at(0),
        "feature_window_end": _at(0),
        "gateway_id": "gw-1",
        "msg_id": f"msg-{prediction_id}-{arm}",
    }
    return row | given


def _outcome(outcome_id: str, prediction_id: str | None, **given: object) -> dict:
    row = {
        "outcome_id": outcome_id,
        "device_id": "wh-1",
        "source": "technician",
        "observed_at": _at(60),
        "prediction_id": prediction_id,
        "component": "heating_element",
        "result": "failed",
        "value": None,
        "technician": None,
        "notes": None,
        "gateway_id": "gw-1",
        "received_at": _at(61),
    }
    return row | given


def _feedback(feedback_id: str, prediction_id: str, rating: int, submitted_at: str) -> dict:
    return {
        "feedback_id": feedback_id,
        "prediction_id": prediction_id,
        "rating": rating,
        "comments": None,
        "submitted_by": "ops",
        "submitted_at": submitted_at,
    }


def _store(connection: Connection, table, rows: list[dict]) -> None:
    connection.execute(insert(table), rows)


def test_predictions_are_found_by_every_filter_newest_first(owner_connection: Connection) -> None:
    _store(
        owner_connection,
        stored.predictions,
        [
            _prediction("p1", made_at=_at(0)),
            _prediction("p1", "shadow", made_at=_at(0), model_version="2"),
            _prediction("p2", made_at=_at(10), device_id="wh-2"),
            _prediction("p3", made_at=_at(20), model_name="usage_pattern", prediction_type="usage_pattern"),
        ],
    )

    def ids(**filters: object) -> list[tuple[str, str]]:
        return [(row["prediction_id"], row["arm"]) for row in stored.find_predictions(owner_connection, **filters)]

    assert ids() == [("p3", "champion"), ("p2", "champion"), ("p1", "champion"), ("p1", "shadow")]
    assert ids(limit=2) == [("p3", "champion"), ("p2", "champion")]
    assert ids(limit=None, device_id="wh-2") == [("p2", "champion")]
    assert ids(model_name="component_failure", arms=["shadow"]) == [("p1", "shadow")]
    assert ids(prediction_type="usage_pattern") == [("p3", "champion")]
    assert ids(prediction_id="p1", arms=["champion", "challenger"]) == [("p1", "champion")]
    assert ids(since=_at(10)) == [("p3", "champion"), ("p2", "champion")]

    assert stored.first_arm(owner_connection, "p1")["arm"] == "champion"
    assert stored.first_arm(owner_connection, "nosuch") is None
    assert stored.prediction_type_of_model(owner_connection, "usage_pattern") == "usage_pattern"
    assert stored.prediction_type_of_model(owner_connection, "nosuch") is None
    assert stored.models_made_in(owner_connection, _at(0), _at(20)) == ["component_failure"]
    assert stored.models_made_in(owner_connection, _at(0), _at(21)) == ["component_failure", "usage_pattern"]


def test_an_outcome_and_a_rating_are_stored_once(owner_connection: Connection) -> None:
    _store(owner_connection, stored.predictions, [_prediction("p1")])

    assert stored.add_outcome_once(owner_connection, _outcome("o2", "p1", observed_at=_at(90))) is True
    assert stored.add_outcome_once(owner_connection, _outcome("o1", "p1", observed_at=_at(30))) is True
    assert stored.add_outcome_once(owner_connection, _outcome("o1", "p1", result="ok")) is False
    assert [(row["outcome_id"], row["result"]) for row in stored.outcomes_of(owner_connection, "p1")] == [
        ("o1", "failed"),
        ("o2", "failed"),
    ]
    assert stored.prediction_of_outcome(owner_connection, "o1") == "p1"
    assert stored.prediction_of_outcome(owner_connection, "nosuch") is None

    assert stored.add_feedback_once(owner_connection, _feedback("f2", "p1", 2, _at(20))) is True
    assert stored.add_feedback_once(owner_connection, _feedback("f1", "p1", 5, _at(10))) is True
    assert stored.add_feedback_once(owner_connection, _feedback("f1", "p1", 1, _at(30))) is False
    assert [(row["feedback_id"], row["rating"]) for row in stored.feedback_of(owner_connection, "p1")] == [
        ("f1", 5),
        ("f2", 2),
    ]
    assert stored.outcomes_of(owner_connection, "nosuch") == stored.feedback_of(owner_connection, "nosuch") == []


def test_experiment_reads_take_each_arms_version_and_the_period(owner_connection: Connection) -> None:
    _store(
        owner_connection,
        stored.predictions,
        [
            _prediction("p1", made_at=_at(0), latency_ms=1.0),
            _prediction("p1", "shadow", made_at=_at(0), model_version="2", latency_ms=4.0),
            _prediction("p2", made_at=_at(0), device_id="wh-2", latency_ms=3.0),
            _prediction("p3", made_at=_at(10), latency_ms=2.0),
            _prediction("p4", made_at=_at(10), model_version="3"),  # neither arm's version
            _prediction("p5", made_at=_at(30)),  # after the period
        ],
    )
    _store(
        owner_connection,
        stored.outcomes,
        [
            _outcome("o3", "p3", observed_at=_at(50), result="ok"),
            _outcome("o1", "p1", observed_at=_at(40)),
            _outcome("o4", "p4", observed_at=_at(40)),
            _outcome("o5", "p5", observed_at=_at(40)),
        ],
    )
    arms = [(["champion"], "1"), (["challenger", "shadow"], "2")]

    found = stored.experiment_outcomes(owner_connection, "component_failure", arms, _at(0), _at(20))
    assert [row.prediction_id for row in found] == ["p1", "p1", "p3"]  # in the order observed
    assert sorted((row.prediction_id, row.arm, row.result) for row in found) == [
        ("p1", "champion", "failed"),
        ("p1", "shadow", "failed"),
        ("p3", "champion", "ok"),
    ]
    unbounded = stored.experiment_outcomes(owner_connection, "component_failure", arms, _at(0), None)
    assert sorted({row.prediction_id for row in unbounded}) == ["p1", "p3", "p5"]

    batches = stored.batches(owner_connection, "component_failure", "1", ["champion"], _at(0), _at(20))
    assert sorted(tuple(batch) for batch in batches) == [(2.0, 1), (3.0, 2)]
    assert stored.batches(owner_connection, "component_failure", "2", ["challenger"], _at(0), None) == []
    assert len(stored.batches(owner_connection, "component_failure", "1", ["champion"], _at(0), None)) == 3


def test_a_versions_outcomes_in_a_window_by_device_type(owner_connection: Connection) -> None:
    _store(
        owner_connection,
        stored.predictions,
        [_prediction("p1"), _prediction("p2", device_type="heat-pump-80"), _prediction("p3", model_version="2")],
    )
    _store(
        owner_connection,
        stored.outcomes,
        [
            _outcome("o1", "p1", observed_at=_at(10)),
            _outcome("o2", "p2", observed_at=_at(10), value=3.5),
            _outcome("o3", "p3", observed_at=_at(10)),
            _outcome("o4", "p1", observed_at=_at(30)),  # after the window
        ],
    )

    found = stored.version_outcomes(owner_connection, "component_failure", "1", _at(0), _at(30), None)
    assert sorted(row.prediction_id for row in found) == ["p1", "p2"]
    [only] = stored.version_outcomes(owner_connection, "component_failure", "1", _at(0), _at(30), "heat-pump-80")
    assert tuple(only) == ("p2", _prediction("p2")["outputs_json"], "heating_element", "failed", 3.5)


def test_the_monitors_pulls_give_epoch_milliseconds_and_json_numbers(owner_connection: Connection) -> None:
    outputs = json.dumps({"litres_next_24h": 120.5})
    _store(
        owner_connection,
        stored.predictions,
        [
            _prediction("p1", made_at=iso(START + timedelta(milliseconds=3))),
            _prediction("p2", "shadow", made_at=_at(5), outputs_json=json.dumps({"none": 1})),
            _prediction("u1", model_name="usage", made_at=_at(1), outputs_json=outputs),
            _prediction("u2", model_name="usage", made_at=_at(2), outputs_json=json.dumps({"output": 7.25})),
            _prediction("p3", made_at=_at(60)),  # after the period
        ],
    )
    _store(
        owner_connection,
        stored.outcomes,
        [
            _outcome("o1", None, device_id="wh-9", observed_at=_at(0)),  # at the start: left out
            _outcome("o2", None, observed_at=_at(30)),
            _outcome("o3", None, observed_at=_at(31), component=None),
            _outcome("u1", "u1", source="sensor", component=None, result=None, value=100.0),
            _outcome("u2", "u2", source="sensor", component=None, result=None, value=8.0),
            _outcome("u3", "u2", source="technician", component=None, result=None, value=9.0),
        ],
    )
    _store(
        owner_connection,
        stored.feedback,
        [
            _feedback("f1", "p1", 4, _at(10)),
            _feedback("f2", "p2", 5, _at(10)),  # a shadow prediction: not served
            _feedback("f3", "p1", 0, _at(10)),  # not a rating
        ],
    )
    start_ms = round(START.timestamp() * 1000)

    pulled = stored.made_in_period(owner_connection, "component_failure", _at(0), _at(60), ["none", "thermostat"])
    assert sorted(tuple(row) for row in pulled) == [
        ("1", "tank-50", "champion", start_ms + 3, "wh-1", 2.0, 0.75, None),
        ("1", "tank-50", "shadow", start_ms + 300_000, "wh-1", 2.0, 1.0, None),
    ]
    assert [tuple(row) for row in stored.findings_observed(owner_connection, _at(0), _at(60))] == [
        ("wh-1", start_ms + 30 * 60_000, "heating_element", "failed")
    ]
    measured = stored.measured_usage(owner_connection, "usage", _at(0), _at(60), ["litres_next_24h", "output"])
    assert sorted(tuple(row)[3:] for row in measured) == [
        (start_ms + 60_000, 120.5, 100.0),
        (start_ms + 120_000, 7.25, 8.0),
    ]
    assert [tuple(row) for row in stored.served_ratings(owner_connection, "component_failure", _at(0), _at(60))] == [
        ("1", "tank-50", "champion", start_ms + 3, 4)
    ]


@pytest.mark.parametrize("key", ["heating_element", "none"])
def test_a_missing_json_key_reads_as_null(owner_connection: Connection, key: str) -> None:
    _store(owner_connection, stored.predictions, [_prediction("p1", outputs_json="{}")])
    [row] = stored.made_in_period(owner_connection, "component_failure", _at(0), _at(1), [key])
    assert row[-1] is None
