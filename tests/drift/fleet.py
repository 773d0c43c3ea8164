"""A small synthetic fleet in a real cloud database: registered versions with stored references, feature rows
stored as ingest stores them, and predictions with their outcomes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import sqlite_utils

from cloud.ingest.feature_codec import encode
from cloud.monitoring.reference import build_reference, store_reference
from cloud.registry import MLModelRegistry
from cloud.storage import iso
from cloud.training.data import LabelledRows
from shared.features import FEATURE_NAMES, FEATURE_SET_VERSION, FEATURES
from shared.messages import PredictionType

NOW = datetime(2026, 3, 1, tzinfo=UTC)
TYPES = ("nwp500-50", "nwp500-80")
_COUNTS = {f.name for f in FEATURES if f.unit in ("per 24 h", "min per 24 h")}
_FRACTIONS = {f.name for f in FEATURES if f.unit == "fraction"}


def feature_values(rows: int, seed: int, shift: dict[str, float] | None = None) -> np.ndarray:
    """Rows of all 32 features: coverage mostly 1, other fractions Beta(2, 5), counts Poisson, the rest normal
    around 50 (sd 10); each feature in ``shift`` moved by that many tens."""
    rng = np.random.default_rng(seed)
    values = rng.normal(50.0, 10.0, (rows, len(FEATURE_NAMES)))
    for column, name in enumerate(FEATURE_NAMES):
        if name in _COUNTS:
            values[:, column] = rng.poisson(4.0, rows)
        elif name in _FRACTIONS:
            values[:, column] = rng.beta(2.0, 5.0, rows)
    values[:, 0] = np.where(rng.random(rows) < 0.9, 1.0, 0.95)
    for name, sds in (shift or {}).items():
        values[:, FEATURE_NAMES.index(name)] += sds * 10.0
    return values.astype(np.float32)


def devices(rows: int) -> tuple[np.ndarray, dict[str, str]]:
    """A device id per row over 40 heaters, and each heater's type (alternating)."""
    ids = np.array([f"wh-{i % 40:03d}" for i in range(rows)])
    return ids, {f"wh-{i:03d}": TYPES[i % 2] for i in range(40)}


def labelled_rows(
    values: np.ndarray, device_ids: np.ndarray, prediction_type: PredictionType = PredictionType.COMPONENT_FAILURE
) -> LabelledRows:
    """Training rows of the shared feature set (labels do not matter to a reference)."""
    return LabelledRows(
        prediction_type=prediction_type,
        feature_names=list(FEATURE_NAMES),
        feature_set_version=FEATURE_SET_VERSION,
        device_ids=device_ids,
        window_ends=np.full(len(values), np.datetime64("2026-01-01T00:00:00", "s")),
        values=values,
        targets=np.zeros(len(values), np.int64),
    )


def register(
    db: sqlite_utils.Database,
    values: np.ndarray,
    model_name: str = "component_failure",
    holdout: dict | None = None,
) -> str:
    """Register a version trained on ``values`` (its reference stored as ``write_artifacts`` stores it)."""
    registry = MLModelRegistry(db)
    version = registry.next_version(model_name)
    ids, types = devices(len(values))
    rows = labelled_rows(values, ids, PredictionType(model_name))
    metrics = {"holdout": holdout} if holdout else {}
    registry.register_model(
        model_name,
        version,
        f"/artifacts/{model_name}/{version}",
        {
            "prediction_type": model_name,
            "feature_set_version": FEATURE_SET_VERSION,
            "metrics": metrics,
            "model_sha256": "0" * 64,
        },
    )
    store_reference(db, model_name, version, build_reference(rows, types))
    return version


def store_features(
    db: sqlite_utils.Database, values: np.ndarray, version: str = FEATURE_SET_VERSION, hours_ago: float = 12
) -> None:
    """Store ``values`` as recent feature rows of the 40 heaters (their types and feature set known, as ingest
    records them)."""
    ids, types = devices(len(values))
    ends = [iso(NOW - timedelta(hours=hours_ago) - timedelta(minutes=i // 40)) for i in range(len(values))]
    with db.conn:
        db.execute(
            "INSERT OR IGNORE INTO feature_sets (version, names_json) VALUES (?, ?)",
            [version, json.dumps(FEATURE_NAMES)],
        )
        db.conn.executemany(
            "INSERT OR IGNORE INTO devices (device_id, gateway_id, device_type) VALUES (?, 'gw-1', ?)",
            list(types.items()),
        )
        db.conn.executemany(
            "INSERT INTO features (feature_set_version, window_end, device_id, values_f32) VALUES (?,?,?,?)",
            zip([version] * len(ends), ends, ids.tolist(), encode(values), strict=True),
        )


def predict_and_observe(
    db: sqlite_utils.Database,
    index: int,
    outputs: dict[str, float],
    outcome: dict,
    model_name: str = "component_failure",
    version: str = "1",
) -> None:
    """One prediction of ``version`` made a day ago and one outcome observed on it an hour ago."""
    prediction_id = f"{model_name}-{version}-{index}"
    device_id = f"wh-{index % 40:03d}"
    with db.conn:
        db["predictions"].insert(
            {
                "prediction_id": prediction_id,
                "arm": "champion",
                "device_id": device_id,
                "device_type": TYPES[index % 40 % 2],
                "prediction_type": model_name,
                "model_name": model_name,
                "model_version": version,
                "outputs_json": json.dumps(outputs),
                "made_at": iso(NOW - timedelta(days=1)),
                "gateway_id": "gw-1",
            }
        )
        db["outcomes"].insert(
            {
                "outcome_id": f"o-{prediction_id}",
                "device_id": device_id,
                "source": outcome.pop("source", "technician"),
                "observed_at": iso(NOW - timedelta(hours=1)),
                "prediction_id": prediction_id,
                **outcome,
            }
        )
