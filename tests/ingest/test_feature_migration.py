"""Migration 3 turns a schema-2 file's JSON feature rows into float32 rows; nothing is lost on the way."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sqlite_utils

from cloud.ingest.feature_codec import read_features
from cloud.storage import MIGRATIONS, open_database
from tests.ingest.helpers import plain_payload

# a file made by the legacy steps (SQLite's own history)
pytestmark = pytest.mark.sqlite_only

ROWS = [
    ("h1", "2026-03-01T12:00:00.000000Z", [1.5, None, 0.1]),
    ("h2", "2026-03-01T12:00:00.000000Z", [-2.0, 3.25, 1e-3]),
    ("h1", "2026-03-01T12:05:00.000000Z", [1e39, 0.0, 0.0]),  # finite, but no float32 holds it
]


def _schema_2_file(path) -> None:
    db = sqlite_utils.Database(path)
    db["schema_migrations"].create({"version": int, "applied_at": str}, pk="version")
    for version, step in MIGRATIONS[:2]:
        step(db)
        db["schema_migrations"].insert({"version": version, "applied_at": "2026-01-01T00:00:00.000000Z"})
    db["feature_sets"].insert({"version": "fs1", "names_json": json.dumps(["a", "b", "c"])})
    for device_id, window_end, values in ROWS:
        db["features"].insert(
            {
                "device_id": device_id,
                "window_end": window_end,
                "feature_set_version": "fs1",
                "values_json": json.dumps(values),
                "msg_id": f"msg-{device_id}-{window_end[14:16]}",
            }
        )
    db.close()


def test_json_rows_become_float32_rows_and_an_unconvertible_row_becomes_a_dead_letter(tmp_path):
    path = tmp_path / "old.db"
    _schema_2_file(path)
    db = open_database(path)

    assert 3 in {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
    stored = read_features(db, "fs1")
    assert (stored.device_ids, stored.window_ends) == (["h1", "h2"], [ROWS[0][1]] * 2)
    expected = np.array([[1.5, np.nan, 0.1], [-2.0, 3.25, 1e-3]], dtype=np.float32)
    assert stored.values.tobytes() == expected.tobytes()
    assert db.execute("SELECT msg_id FROM features WHERE device_id = 'h2'").fetchone() == ("msg-h2-00",)

    [letter] = db["dead_letters"].rows
    assert letter["reason"].startswith("invalid: ") and "float32" in letter["reason"]
    kept = json.loads(plain_payload(db, letter["payload"]))  # encrypted at rest by migration 20
    assert (kept["device_id"], kept["window_end"], kept["values"]) == ("h1", ROWS[2][1], [1e39, 0.0, 0.0])
    assert "values_json" not in {column.name for column in db["features"].columns}
