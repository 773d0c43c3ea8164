"""Feature windows as packed float32, the feature sets that name their values, and training datasets.

``features`` is keyed by (feature set, window end, device), WITHOUT ROWID on SQLite: windows arrive in time order, so
inserts append to the end of the b-tree and a training read is one range scan. On PostgreSQL it is partitioned by day
of ``window_end`` (revision 0006, ``cloud.data.partitions``), which the key already holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Integer,
    LargeBinary,
    Row,
    RowMapping,
    Table,
    Text,
    bindparam,
    func,
    insert,
    select,
    text,
)

from cloud.data import partitions
from cloud.data.bulk import BulkInsert, copy_text, fetch_all, fetch_one
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


# ---- feature sets ----------------------------------------------------------------------------------------------


def feature_set_names(connection: Connection, version: str) -> list[str] | None:
    """The names of the feature set's values, in stored order; None for a set never stored."""
    names = connection.execute(_NAMES, {"version": version}).scalar()
    return None if names is None else json.loads(names)


#: built once: ingest asks for each batch
_NAMES = select(feature_sets.c.names_json).where(feature_sets.c.version == bindparam("version"))


def every_feature_set(connection: Connection) -> dict[str, list[str]]:
    """Each stored feature set's names, by version in version order."""
    query = select(feature_sets.c.version, feature_sets.c.names_json).order_by(feature_sets.c.version)
    return {version: json.loads(names) for version, names in connection.execute(query)}


def add_feature_sets(connection: Connection, names_of: Mapping[str, Sequence[str]]) -> None:
    """Record each version's names unless the version is recorded already (its names never change)."""
    _NEW_SETS.write(connection, [(version, json.dumps(list(names))) for version, names in names_of.items()])


_NEW_SETS = BulkInsert(lambda insert, _: insert(feature_sets).on_conflict_do_nothing(), ("version", "names_json"))


# ---- feature rows ----------------------------------------------------------------------------------------------

#: a ``features`` row as ``add_feature_rows`` takes it
FEATURE_ROW = ("device_id", "window_end", "feature_set_version", "values_f32", "msg_id")
_NEW_ROWS = BulkInsert(lambda insert, _: insert(features).on_conflict_do_nothing(), FEATURE_ROW)

#: SQLite cuts a message's rows out of its packed values and its [device_id, window_end] pairs itself, in C, instead
#: of Python building and binding a tuple per row (``add_packed_rows``)
_SQLITE_PACKED = (
    "INSERT INTO features (device_id, window_end, feature_set_version, values_f32, msg_id)"
    " SELECT j.value ->> 0, j.value ->> 1, ?1, substr(?2, j.key * ?3 + 1, ?3), ?4 FROM json_each(?5) AS j"
    " WHERE true ON CONFLICT DO NOTHING"
)


def add_feature_rows(connection: Connection, rows: Sequence[Sequence[Any]]) -> int:
    """Store feature rows (in ``FEATURE_ROW`` order), keeping any already stored; how many were new."""
    return _NEW_ROWS.write(connection, rows)


def add_packed_rows(connection: Connection, messages: Sequence[tuple[str, bytes, int, str | None, bytes]]) -> None:
    """Store the rows of whole messages, keeping any already stored: (feature set version, the rows' values packed
    back to back, bytes per row, msg_id, the rows' [device_id, window_end] pairs as JSON) each.

    One statement per message on SQLite (cut up in SQL); on PostgreSQL one COPY, the rows cut here straight into
    COPY's text format (a row's values as hex, from one ``hex()`` of the message's), a chunk per message, with no
    tuple per row.
    """
    if not messages:
        return
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(_SQLITE_PACKED, list(messages))
        return
    chunks: list[str] = []
    for version, packed, size, msg_id, keys in messages:
        hexed, step = packed.hex(), 2 * size
        middle, end = f"\t{copy_text(version)}\t\\\\x", f"\t{copy_text(msg_id)}\n"
        pairs = json.loads(keys)
        # JSON writes a backslash, tab, newline or carriage return with a backslash: keys without one (and without a
        # null) go as they are, which saves two thirds of the formatting
        if b"\\" in keys or b"null" in keys:
            pairs = [(copy_text(device_id), copy_text(window_end)) for device_id, window_end in pairs]
        rows = zip(pairs, range(0, len(hexed), step), strict=True)
        chunks.append(
            "".join(
                [f"{device}\t{window_end}{middle}{hexed[at : at + step]}{end}" for (device, window_end), at in rows]
            )
        )
    _NEW_ROWS.write_copy_text(connection, chunks)


def every_row(connection: Connection, version: str) -> Sequence[Sequence[Any]]:
    """(device_id, window_end, values_f32) of every row of one feature set, in (window_end, device_id) order."""
    query = (
        select(features.c.device_id, features.c.window_end, features.c.values_f32)
        .where(features.c.feature_set_version == version)
        .order_by(features.c.window_end, features.c.device_id)
    )
    return fetch_all(connection, query)


#: one device's rows: there is no index by device (one would put every ingested row at a random place in a second
#: b-tree; ingest measured ~7x slower). Window ends are aligned across the fleet, so this hops from one window end
#: to the next with a seek on the key and looks the device up in each: cost in windows, not in fleet rows.
_DEVICE_ROWS = text(
    "WITH RECURSIVE w(t) AS ("
    " SELECT (SELECT min(window_end) FROM features WHERE feature_set_version = :version AND window_end >= :start)"
    " UNION ALL SELECT (SELECT min(window_end) FROM features WHERE feature_set_version = :version"
    " AND window_end > w.t) FROM w WHERE w.t < :end)"
    " SELECT f.window_end, f.values_f32 FROM w JOIN features AS f ON f.feature_set_version = :version"
    " AND f.window_end = w.t AND f.device_id = :device WHERE w.t < :end ORDER BY f.window_end"
)


def device_rows(connection: Connection, device_id: str, version: str, start: str, end: str) -> list[Row]:
    """(window_end, values_f32) of one device's rows of one feature set with window ends in [start, end), oldest
    first."""
    parameters = {"version": version, "start": start, "end": end, "device": device_id}
    return connection.execute(_DEVICE_ROWS, parameters).all()


_NEWEST_WINDOWS = text(
    "WITH RECURSIVE w(t, n) AS ("
    " SELECT (SELECT max(window_end) FROM features WHERE feature_set_version = :version AND window_end < :before), 1"
    " UNION ALL SELECT (SELECT max(window_end) FROM features WHERE feature_set_version = :version"
    " AND window_end < w.t), n + 1 FROM w WHERE w.t IS NOT NULL AND n < :windows)"
    " SELECT w.t, f.values_f32 FROM w LEFT JOIN features AS f ON f.feature_set_version = :version"
    " AND f.window_end = w.t AND f.device_id = :device WHERE w.t IS NOT NULL ORDER BY w.t DESC"
)


def newest_windows(connection: Connection, device_id: str, version: str, before: str, windows: int) -> list[Row]:
    """(window_end, the device's values_f32 or None) of the feature set's ``windows`` newest window ends before
    ``before``, newest first: the fleet's windows, each a seek, whether the device has a row there or not."""
    parameters = {"version": version, "before": before, "device": device_id, "windows": windows}
    return connection.execute(_NEWEST_WINDOWS, parameters).all()


def window_span(connection: Connection) -> tuple[str | None, str | None]:
    """The first and last window end of every stored row. The key leads with (feature set, window end), so hopping
    from one feature set to the next and taking each one's min and max is a few seeks however many rows there are."""
    rows = connection.execute(
        text(
            "WITH RECURSIVE sets(version) AS (SELECT min(feature_set_version) FROM features"
            " UNION ALL SELECT (SELECT min(feature_set_version) FROM features WHERE feature_set_version > sets.version)"
            " FROM sets WHERE sets.version IS NOT NULL)"
            " SELECT (SELECT min(window_end) FROM features WHERE feature_set_version = sets.version),"
            " (SELECT max(window_end) FROM features WHERE feature_set_version = sets.version)"
            " FROM sets WHERE sets.version IS NOT NULL"
        )
    ).all()
    found = [(first, last) for first, last in rows if first is not None]
    if not found:
        return None, None
    return min(first for first, _ in found), max(last for _, last in found)


def rows_concatenated(
    connection: Connection,
    version: str,
    start: str,
    end: str,
    device_type: str | None,
    after: tuple[str, str],
    limit: int,
) -> tuple[int, bytes | None, bytes | None, bytes | None]:
    """The next ``limit`` rows of a feature set with window ends in [start, end), after the key ``after``
    ((window_end, device_id)), of devices of ``device_type`` if given (fleet's ``devices``, joined), each column
    concatenated into one value: (count, the values_f32 blobs, the window ends, the device ids joined by spaces, which
    no id holds). A training read cuts them up with numpy instead of a Python object per row.

    The chunk is the next ``limit`` rows in key order; the aggregates take no ORDER BY of their own (on PostgreSQL one
    sorted every chunk again, in 4 MB of work_mem: most of the read's time), so the caller checks the order it got.
    The three columns come from one pass over the rows, so row i is at the same place in each. Ids are joined, not
    padded to a width (printf's padding cost SQLite twice the rest of the read).
    """
    join = " JOIN devices AS d ON d.device_id = f.device_id AND d.device_type = :device_type" if device_type else ""
    if connection.dialect.name == "postgresql":
        columns = (
            "count(*), string_agg(values_f32, ''::bytea), convert_to(string_agg(window_end, ''), 'UTF8'),"
            " convert_to(string_agg(device_id, ' '), 'UTF8')"
        )
    else:
        columns = (
            "count(*), CAST(group_concat(values_f32, '') AS BLOB), CAST(group_concat(window_end, '') AS BLOB),"
            " CAST(group_concat(device_id, ' ') AS BLOB)"
        )
    query = text(
        f"SELECT {columns} FROM (SELECT f.values_f32, f.window_end, f.device_id FROM features AS f{join}"
        " WHERE f.feature_set_version = :version AND f.window_end >= :start AND f.window_end < :end"
        " AND (f.window_end, f.device_id) > (:after_end, :after_device)"
        " ORDER BY f.window_end, f.device_id LIMIT :limit) AS chunk"
    )
    parameters = {
        "version": version,
        "start": start,
        "end": end,
        "after_end": after[0],
        "after_device": after[1],
        "limit": limit,
    }
    if device_type:
        parameters["device_type"] = device_type
    count, blob, ends, ids = fetch_one(connection, query, parameters)
    return count, _bytes(blob), _bytes(ends), _bytes(ids)


def _bytes(value: bytes | memoryview | None) -> bytes | None:
    return bytes(value) if isinstance(value, memoryview) else value


# ---- datasets --------------------------------------------------------------------------------------------------


def add_dataset(connection: Connection, row: Mapping[str, Any]) -> None:
    """Record a built dataset: its query (JSON), row count, content hash and when."""
    connection.execute(insert(datasets), dict(row))


def find_dataset(connection: Connection, dataset_id: str) -> RowMapping | None:
    """The dataset's record."""
    return connection.execute(select(datasets).where(datasets.c.dataset_id == dataset_id)).mappings().first()


def rows_of_other_sets(connection: Connection, version: str, start: str, end: str) -> list[Row]:
    """(feature set version, rows) of every stored feature set but ``version``, counting its rows whose window
    ended in [start, end), by version: one range of the key per set."""
    rows = (
        select(func.count())
        .where(
            features.c.feature_set_version == feature_sets.c.version,
            features.c.window_end >= start,
            features.c.window_end < end,
        )
        .scalar_subquery()
    )
    query = select(feature_sets.c.version, rows).where(feature_sets.c.version != version)
    return list(connection.execute(query.order_by(feature_sets.c.version)))


def count_rows(connection: Connection) -> int:
    """Feature rows stored, every feature set."""
    return connection.execute(select(func.count()).select_from(features)).scalar_one()


# ---- day partitions and retention ------------------------------------------------------------------------------


def ensure_partitions(connection: Connection, days: Iterable[date]) -> list[str]:
    """Make the day partitions of ``days`` (of window ends) that are missing, on PostgreSQL; the names made."""
    return partitions.ensure_days(connection, features.name, "window_end", days)


def partitions_before(connection: Connection, cutoff: date) -> list[date]:
    """The days of the day partitions wholly before ``cutoff``, oldest first (none on SQLite)."""
    return sorted(day for day in partitions.day_partitions(connection, features.name) if day < cutoff)


def drop_partition(connection: Connection, day: date) -> tuple[int, int]:
    """Detach and drop the day's partition; (rows it held, rows kept: none, no table names a feature row)."""
    return partitions.drop_day(connection, features, day)


def _older(cutoff: date) -> ColumnElement:
    return features.c.window_end < cutoff.isoformat()


def count_older(connection: Connection, cutoff: date) -> tuple[int, int]:
    """(feature rows whose window ended before ``cutoff``, those of them to keep: none)."""
    return connection.execute(select(func.count()).where(_older(cutoff))).scalar_one(), 0


_KEY = (features.c.feature_set_version, features.c.window_end, features.c.device_id)


def older_keys(
    connection: Connection, cutoff: date, after: tuple[Any, ...] | None, limit: int
) -> list[tuple[Any, ...]]:
    """The keys of the next ``limit`` rows whose window ended before ``cutoff``, in key order after ``after``
    (``cloud.data.partitions.keys_after``)."""
    return partitions.keys_after(connection, _KEY, _older(cutoff), after, limit)


def delete_older(connection: Connection, cutoff: date, keys: Sequence[tuple[Any, ...]]) -> int:
    """Delete the rows of ``keys`` (from ``older_keys``) that are still to go; how many."""
    return partitions.delete_keys(connection, features, _KEY, _older(cutoff), keys)
