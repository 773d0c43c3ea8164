"""``FeatureStore.get_training_dataset``: time and peak memory for 100k and 1M stored feature rows.

Rows are written the way ingest stores them (packed float32, time-ordered key), 1,000 heaters at hourly
windows, with one technician-reported failure per 50 heaters so labelling has work to do. Target: 1M rows in
under 5 s, and 10× the rows costing at most 12× the time.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from cloud.feature_store import FeatureStore
from cloud.ingest.feature_codec import encode
from cloud.storage import iso, open_database
from shared.features import FEATURE_NAMES, FEATURE_SET_VERSION

HEATERS = 1000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _fill(path: Path, rows: int) -> None:
    db = open_database(path)
    windows = rows // HEATERS
    devices = [f"wh-{i:05d}" for i in range(HEATERS)]
    db["devices"].insert_all(
        [{"device_id": d, "gateway_id": "gw-1", "device_type": "nwp500-50"} for d in devices], pk="device_id"
    )
    rng = np.random.default_rng(0)
    with db.conn:
        for w in range(windows):
            end = iso(T0 + timedelta(hours=w))
            blobs = encode(rng.normal(size=(HEATERS, len(FEATURE_NAMES))).astype(np.float32))
            db.conn.executemany(
                "INSERT INTO features (feature_set_version, window_end, device_id, values_f32) VALUES (?,?,?,?)",
                [(FEATURE_SET_VERSION, end, d, b) for d, b in zip(devices, blobs, strict=True)],
            )
        failed_at = T0 + timedelta(hours=windows // 2)
        db["outcomes"].insert_all(
            {
                "outcome_id": f"o-{d}",
                "device_id": d,
                "source": "technician",
                "observed_at": iso(failed_at),
                "component": "sediment",
                "result": "failed",
                "received_at": iso(failed_at),
            }
            for d in devices[::50]
        )
    db.conn.close()


def _measure(rows: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "iotsphere.db"
        _fill(path, rows)
        store = FeatureStore(open_database(path))
        end = T0 + timedelta(hours=rows // HEATERS)
        tracemalloc.start()
        began = time.perf_counter()
        dataset = store.get_training_dataset(None, T0, end, horizon=timedelta(days=3), as_of=end + timedelta(days=30))
        seconds = time.perf_counter() - began
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return {
            "stored_rows": rows,
            "dataset_rows": int(len(dataset.labels)),
            "seconds": round(seconds, 3),
            "peak_mib": round(peak / 2**20, 1),
        }


def run() -> dict:
    small, large = _measure(100_000), _measure(1_000_000)
    ratio = large["seconds"] / small["seconds"]
    return {
        "rows_100k": small,
        "rows_1m": large,
        "time_ratio_10x_rows": round(ratio, 2),
        "targets": {"seconds_1m_max": 5.0, "time_ratio_max": 12.0},
        "met": {"seconds_1m": large["seconds"] < 5.0, "ratio": ratio <= 12.0},
    }
