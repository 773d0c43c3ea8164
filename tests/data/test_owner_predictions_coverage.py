"""Label coverage from the ``predictions`` owner on SQLite and PostgreSQL: the share of predictions with a linked
outcome, and how long after the prediction its first outcome arrived."""

from __future__ import annotations

from sqlalchemy import Connection, insert

from cloud.data import predictions

DAY_MS = 86_400_000


def _prediction(prediction_id: str, made_at: str, *, arm: str = "champion", version: str = "1", model: str = "m"):
    return {
        "prediction_id": prediction_id,
        "arm": arm,
        "device_id": "d1",
        "device_type": "t50",
        "model_name": model,
        "model_version": version,
        "outputs_json": "{}",
        "made_at": f"2026-01-{made_at}T00:00:00.000000Z",
    }


def _outcome(outcome_id: str, prediction_id: str, received_at: str) -> dict:
    return {
        "outcome_id": outcome_id,
        "prediction_id": prediction_id,
        "device_id": "d1",
        "source": "technician",
        "received_at": f"2026-01-{received_at}T00:00:00.000000Z",
    }


def test_coverage_counts_labelled_predictions_and_the_delay_of_their_first_label(owner_connection: Connection) -> None:
    rows = [
        _prediction("p1", "01"),
        _prediction("p1", "01", arm="challenger", version="2"),
        _prediction("p2", "02"),
        _prediction("p3", "03"),
        _prediction("late", "20"),  # outside the period
        _prediction("q1", "02", model="other"),
    ]
    owner_connection.execute(insert(predictions.predictions), rows)
    owner_connection.execute(
        insert(predictions.outcomes),
        [
            _outcome("o1", "p1", "03"),
            _outcome("o2", "p1", "09"),
            _outcome("o3", "p2", "07"),
            _outcome("o4", "q1", "03"),
        ],
    )

    found = predictions.label_coverage(owner_connection, "m", "2026-01-01", "2026-01-10")

    assert [tuple(row[:5]) for row in found] == [("1", "t50", "champion", 3, 2), ("2", "t50", "challenger", 1, 1)]
    champion, challenger = found
    assert champion[5] == 3.5 * DAY_MS and champion[6] == 5 * DAY_MS  # p1 after 2 days (its first), p2 after 5
    assert challenger[5] == 2 * DAY_MS and challenger[6] == 2 * DAY_MS
    assert predictions.label_coverage(owner_connection, "m", "2026-02-01", "2026-03-01") == []
