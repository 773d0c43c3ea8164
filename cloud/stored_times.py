"""When the stored data lies: the first and last time of feature windows and of predictions.

Simulated history and ``sim run`` put data where simulated time is, often ahead of (or long before) the wall clock,
so a window ending "now" can miss all of it. Commands with such windows use these spans for ``--as-of data`` and to
say where the data is when their window holds none (``cloud.cli_options``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from cloud.data import features, predictions
from cloud.data.connections import connection_of
from cloud.storage import from_iso, iso


@dataclass(frozen=True)
class TimeSpan:
    first: datetime
    last: datetime


def _span(first: str | None, last: str | None) -> TimeSpan | None:
    return None if first is None or last is None else TimeSpan(from_iso(first), from_iso(last))


def feature_span(db: sqlite_utils.Database) -> TimeSpan | None:
    """Window ends of the fleet's stored feature rows; None when there are none (a few seeks however many rows)."""
    return _span(*features.window_span(connection_of(db)))


def prediction_span(db: sqlite_utils.Database, model_name: str | None = None) -> TimeSpan | None:
    """Times predictions were made (of ``model_name`` alone if given); None when there are none."""
    return _span(*predictions.made_span(connection_of(db), model_name))


def where_features_are(db: sqlite_utils.Database) -> str:
    """Where the stored feature rows lie, for a message about a window that holds none of them."""
    span = feature_span(db)
    if span is None:
        return "no feature rows are stored at all"
    return f"the stored feature windows run from {iso(span.first)} to {iso(span.last)}"
