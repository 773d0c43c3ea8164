"""Keyset pages of a heater's predictions, on SQLite and PostgreSQL: newest first, ties on the time kept apart by
the prediction id, no row twice and none skipped."""

from __future__ import annotations

from sqlalchemy import Connection

from cloud.data import predictions


def test_pages_walk_back_through_equal_times_without_gaps(owner_connection: Connection) -> None:
    made = ["2026-12-01T00:00:00.000000Z"] * 3 + ["2026-12-02T00:00:00.000000Z"] * 4
    rows = [
        (f"p{n}", "", "dev-1", "t", "failure", "component_failure", "1", "{}", 1.0, at, at, "gw-1", f"m{n}")
        for n, at in enumerate(made)
    ]
    predictions.add_predictions(owner_connection, rows)

    seen, before = [], None
    while page := predictions.find_predictions(owner_connection, device_id="dev-1", before=before, limit=2):
        seen += [row["prediction_id"] for row in page]
        before = (page[-1]["made_at"], page[-1]["prediction_id"])
    assert seen == ["p3", "p4", "p5", "p6", "p0", "p1", "p2"]
