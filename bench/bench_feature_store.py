"""The point-in-time training dataset beside DuckDB's ASOF JOIN, on SQLite and on PostgreSQL, at 100k and 1M rows.

Rows are stored through ``FeatureStore.store_feature_rows`` (the path a backfilled history takes), 1,000 heaters at
hourly windows, with one technician-reported failure per 50 heaters so the join has work to do. Every figure is the
best of three runs on the same database, all taken in one process, one after the other:

- ``get_training_dataset``: what a training run pays, from the database: read, join and label, content hash, the
  dataset's record and its audit entry.
- ``fetch``: the rows and the failures read from the database into columns (``FeatureStore.read_rows``,
  ``known_failures``): the part both joins below need.
- ``ours_fetch_and_join`` and ``duckdb_fetch_and_asof``: that fetch, then the join and labels (``label_rows``:
  numpy searchsorted on one (device, time) key; or DuckDB's ``ASOF LEFT JOIN ... r.t < f.t`` on the same arrays,
  two threads). DuckDB cannot read the database itself here: its sqlite and postgres scanners are extensions it
  downloads, and the machine has no network beyond loopback.
- ``join_in_memory``: the join alone on arrays already in memory (ours; DuckDB at one and at two threads).

DuckDB's labels are checked equal to ours. Targets: 1M rows in under 5 s and 10x the rows costing at most 12x the
time (``get_training_dataset``, as before); at 1M rows, ours at or below DuckDB's time for the same work, on both
databases, from the database (fetch and join) and in memory. The PostgreSQL schema is dropped afterwards.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from sqlalchemy import text

from cloud.data import engine as engines
from cloud.data.postgres import dispose_engines
from cloud.feature_store import FeatureStore, ObservedFailure
from cloud.storage import iso, open_database
from cloud.training.labels import FailureTimes, label_rows
from shared.features import FEATURE_NAMES, FEATURE_SET_VERSION
from tests.postgres_run import SERVER, schema_url

HEATERS = 1000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HORIZON = timedelta(days=3)
#: windows stored per call while filling (100,000 rows)
_FILL_WINDOWS = 100
_ASOF = (
    "SELECT CASE WHEN r.t + $horizon > $until THEN -1 WHEN f.t - r.t <= $horizon THEN f.label ELSE 0 END AS label"
    " FROM rows AS r ASOF LEFT JOIN failures AS f ON r.device = f.device AND r.t < f.t ORDER BY r.i"
)


def _fill(store: FeatureStore, rows: int) -> datetime:
    """Store ``rows`` feature rows and the failures; the end of their windows."""
    windows = rows // HEATERS
    devices = np.array([f"wh-{i:05d}" for i in range(HEATERS)])
    rng = np.random.default_rng(0)
    first = np.datetime64(T0.replace(tzinfo=None), "s")
    for start in range(0, windows, _FILL_WINDOWS):
        hours = np.arange(start, min(windows, start + _FILL_WINDOWS))
        ends = np.repeat(first + hours * np.timedelta64(3600, "s"), HEATERS)
        values = rng.normal(size=(ends.size, len(FEATURE_NAMES))).astype(np.float32)
        store.store_feature_rows(np.tile(devices, hours.size).tolist(), ends, values, list(FEATURE_NAMES))
    failed_at = T0 + timedelta(hours=windows // 2)
    store.store_component_failures(ObservedFailure(str(d), "sediment", failed_at) for d in devices[::50])
    return T0 + timedelta(hours=windows)


def _best(run: Callable[[], Any], times: int = 3) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(times):
        began = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - began)
    return round(best, 4), result


def _seconds(times: np.ndarray) -> np.ndarray:
    return times.astype("datetime64[s]").astype(np.int64)


class _DuckJoin:
    """DuckDB's ASOF JOIN over numpy arrays (registered, not copied), as many threads as asked."""

    def __init__(self, threads: int) -> None:
        self.connection = duckdb.connect(config={"threads": threads})

    def __call__(self, row_device, window_ends, failures: FailureTimes, observed_until: np.datetime64) -> np.ndarray:
        rows = {"i": np.arange(row_device.size), "device": row_device, "t": _seconds(window_ends)}
        found = {"device": failures.device, "t": _seconds(failures.time), "label": failures.label}
        self.connection.register("rows", rows)
        self.connection.register("failures", found)
        parameters = {"horizon": int(HORIZON.total_seconds()), "until": int(_seconds(observed_until))}
        return self.connection.execute(_ASOF, parameters).fetchnumpy()["label"].astype(np.int64)


def _measure(db_target: str, rows: int) -> dict:
    store = FeatureStore(open_database(db_target))
    end = _fill(store, rows)
    as_of = end + timedelta(days=30)
    start_text, end_text, as_of_text = iso(T0), iso(end), iso(as_of)
    observed_until = np.datetime64(as_of.replace(tzinfo=None), "s")

    def fetch():
        read = store.read_rows(FEATURE_SET_VERSION, start_text, end_text)
        return read, store.known_failures(read.devices, start_text, as_of_text)

    def ours(read, failures):
        return label_rows(read.row_device, read.window_ends, failures, HORIZON, observed_until)

    duck_1, duck_2 = _DuckJoin(1), _DuckJoin(2)

    def duck(read, failures, join=duck_2):
        return join(read.row_device, read.window_ends, failures, observed_until)

    build_s, dataset = _best(lambda: store.get_training_dataset(None, T0, end, horizon=HORIZON, as_of=as_of))
    tracemalloc.start()
    store.get_training_dataset(None, T0, end, horizon=HORIZON, as_of=as_of)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    fetch_s, (read, failures) = _best(fetch)
    ours_e2e_s, _ = _best(lambda: ours(*fetch()))
    duck_e2e_s, _ = _best(lambda: duck(*fetch()))
    ours_s, labels = _best(lambda: ours(read, failures))
    duck_2_s, duck_labels = _best(lambda: duck(read, failures))
    duck_1_s, _ = _best(lambda: duck(read, failures, duck_1))
    if not np.array_equal(labels, duck_labels) or not np.array_equal(labels[labels >= 0], dataset.labels):
        raise AssertionError("DuckDB's ASOF JOIN, label_rows and the dataset disagree")
    return {
        "stored_rows": rows,
        "dataset_rows": int(dataset.labels.size),
        "labelled_failing": int((dataset.labels > 0).sum()),
        "get_training_dataset_s": build_s,
        "peak_mib": round(peak / 2**20, 1),
        "fetch_s": fetch_s,
        "ours_fetch_and_join_s": ours_e2e_s,
        "duckdb_fetch_and_asof_s": duck_e2e_s,
        "join_in_memory_s": {"ours": ours_s, "duckdb_2_threads": duck_2_s, "duckdb_1_thread": duck_1_s},
    }


def _on_sqlite(rows: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        return _measure(str(Path(folder) / "iotsphere.db"), rows)


def _on_postgres(rows: int) -> dict:
    admin, schema = engines.create(SERVER), f"bench_feature_store_{uuid.uuid4().hex[:8]}"
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        return _measure(schema_url(schema), rows)
    finally:
        dispose_engines()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _judged(small: dict, large: dict) -> dict:
    ratio = large["get_training_dataset_s"] / small["get_training_dataset_s"]
    in_memory = large["join_in_memory_s"]
    return {
        "rows_100k": small,
        "rows_1m": large,
        "time_ratio_10x_rows": round(ratio, 2),
        "met": {
            "seconds_1m": large["get_training_dataset_s"] < 5.0,
            "ratio": ratio <= 12.0,
            "fetch_and_join_vs_duckdb": large["ours_fetch_and_join_s"] <= large["duckdb_fetch_and_asof_s"],
            "in_memory_vs_duckdb": in_memory["ours"]
            <= min(in_memory["duckdb_2_threads"], in_memory["duckdb_1_thread"]),
            # the comparison: a whole dataset from the database against DuckDB's join of arrays in memory
            "get_training_dataset_vs_duckdb_in_memory": large["get_training_dataset_s"]
            <= in_memory["duckdb_2_threads"],
        },
    }


def run() -> dict:
    sqlite = _judged(_on_sqlite(100_000), _on_sqlite(1_000_000))
    postgresql = _judged(_on_postgres(100_000), _on_postgres(1_000_000))
    return {
        "sqlite": sqlite,
        "postgresql": postgresql,
        "duckdb": duckdb.__version__,
        "targets": {"seconds_1m_max": 5.0, "time_ratio_max": 12.0, "vs_duckdb": "at or below, at 1M rows"},
    }
