"""Feature windows as packed float32, the feature sets that name their values, and training datasets.

``features`` is keyed by (feature set, window end, device), WITHOUT ROWID on SQLite: windows arrive in time order, so
inserts append to the end of the b-tree and a training read is one range scan.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, LargeBinary, Table, Text

from cloud.data.metadata import metadata

feature_sets = Table(
    "feature_sets",
    metadata,
    Column("version", Text, primary_key=True, nullable=True),
    Column("names_json", Text),
)


features = Table(
    "features",
    metadata,
    Column("feature_set_version", Text, primary_key=True),
    Column("window_end", Text, primary_key=True),
    Column("device_id", Text, primary_key=True),
    Column("values_f32", LargeBinary, nullable=False),
    Column("msg_id", Text),
    sqlite_with_rowid=False,
)


datasets = Table(
    "datasets",
    metadata,
    Column("dataset_id", Text, primary_key=True, nullable=True),
    Column("query_json", Text),
    Column("row_count", Integer),
    Column("content_hash", Text),
    Column("created_at", Text),
)
