"""When the stored data lies: the first and last time of feature windows and of predictions.

Simulated history and ``sim run`` put data where simulated time is, often ahead of (or long before) the wall clock,
so a window ending "now" can miss all of it. Commands with such windows use these spans for ``--as-of data`` and to
say where the data is when their window holds none (``cloud.cli_options``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from cloud.storage import from_iso, iso


@dataclass(frozen=True)
class TimeSpan:
    first: datetime
    last: datetime


def _span(rows: list[tuple[str | None, str | None]]) -> TimeSpan | None:
    found = [(first, last) for first, last in rows if first is not None]
    if not found:
        return None
    return TimeSpan(from_iso(min(first for first, _ in found)), from_iso(max(last for _, last in found)))


def feature_span(db: sqlite_utils.Database) -> TimeSpan | None:
    """Window ends of the fleet's stored feature rows; None when there are none. The table's key leads with (feature
    set, window end), so hopping from one feature set to the next and taking each one's min and max is a few seeks
    however many rows there are."""
    rows = db.execute(
        "WITH RECURSIVE sets(version) AS (SELECT min(feature_set_version) FROM features"
        " UNION ALL SELECT (SELECT min(feature_set_version) FROM features WHERE feature_set_version > sets.version)"
        " FROM sets WHERE sets.version IS NOT NULL)"
        " SELECT (SELECT min(window_end) FROM features WHERE feature_set_version = sets.version),"
        " (SELECT max(window_end) FROM features WHERE feature_set_version = sets.version)"
        " FROM sets WHERE sets.version IS NOT NULL"
    ).fetchall()
    return _span(rows)


def prediction_span(db: sqlite_utils.Database, model_name: str | None = None) -> TimeSpan | None:
    """Times predictions were made (of ``model_name`` alone if given); None when there are none."""
    where, params = ("WHERE model_name = ?", [model_name]) if model_name else ("", [])
    return _span([db.execute(f"SELECT min(made_at), max(made_at) FROM predictions {where}", params).fetchone()])


def where_features_are(db: sqlite_utils.Database) -> str:
    """Where the stored feature rows lie, for a message about a window that holds none of them."""
    span = feature_span(db)
    if span is None:
        return "no feature rows are stored at all"
    return f"the stored feature windows run from {iso(span.first)} to {iso(span.last)}"
