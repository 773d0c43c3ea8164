"""The stored form of a feature vector: packed little-endian float32 (``features.values_f32``), NaN for null.

Four bytes a value instead of JSON text: smaller, built for a whole batch with one numpy call, and read back
for training as one ``frombuffer`` over the concatenated blobs instead of a JSON parse per row. float32 is what
the edge computes and what the ONNX models take, so it loses nothing the models would see; a finite value beyond
float32's range has no float32 form and is refused (``ValueError``) rather than stored as infinity.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from cloud.data import features
from cloud.data.connections import Database, connection_for

#: one stored value
FLOAT32 = np.dtype("<f4")
FLOAT32_MAX = float(np.finfo(np.float32).max)


def to_matrix(values: Sequence[Sequence[float | None]]) -> np.ndarray:
    """Rows of finite numbers or None → a ``(rows, features)`` float32 matrix, None as NaN.

    Raises ValueError if the rows differ in length or a value is beyond float32's range.
    """
    wide = np.array(values, dtype=np.float64)  # None → NaN; ragged rows raise ValueError
    if wide.ndim != 2:
        raise ValueError(f"feature rows must form a matrix, got shape {wide.shape}")
    if (np.abs(wide) > FLOAT32_MAX).any():  # NaN compares false: nulls pass
        raise ValueError(f"a feature value is beyond float32's range (±{FLOAT32_MAX:.6g})")
    return wide.astype(FLOAT32)


def row_bytes(n_features: int) -> int:
    """Size of one row's blob."""
    return n_features * FLOAT32.itemsize


def pack(matrix: np.ndarray) -> bytes:
    """The rows' blobs back to back: row ``i`` is bytes ``[i * row_bytes, (i + 1) * row_bytes)``."""
    return np.ascontiguousarray(matrix, dtype=FLOAT32).tobytes()


def encode(matrix: np.ndarray) -> list[bytes]:
    """One blob per row of a float32 matrix, cut in C (a void view's ``tolist`` gives bytes)."""
    packed = np.ascontiguousarray(matrix, dtype=FLOAT32)
    return packed.view(np.dtype((np.void, row_bytes(packed.shape[1])))).ravel().tolist()


def decode(blobs: Iterable[bytes], n_features: int) -> np.ndarray:
    """Blobs of ``n_features`` values each → a ``(rows, n_features)`` float32 matrix (NaN where null)."""
    joined = b"".join(blobs)
    if len(joined) % row_bytes(n_features):
        raise ValueError(f"feature blobs do not hold whole rows of {n_features} float32 values")
    return np.frombuffer(joined, dtype=FLOAT32).reshape(-1, n_features)


@dataclass(frozen=True)
class StoredFeatures:
    """One feature set's stored rows, in (window_end, device_id) order."""

    feature_names: list[str]
    device_ids: list[str]
    window_ends: list[str]  # cloud.storage.iso text
    values: np.ndarray  # float32 (rows, features), NaN where the gateway sent null


def read_features(conn: Database | sqlite3.Connection, feature_set_version: str) -> StoredFeatures:
    """Every stored row of one feature set, e.g. to build a training set; KeyError if the set is unknown."""
    connection = connection_for(conn)
    feature_names = features.feature_set_names(connection, feature_set_version)
    if feature_names is None:
        raise KeyError(f"no feature set {feature_set_version!r} has been ingested")
    rows = features.every_row(connection, feature_set_version)
    return StoredFeatures(
        feature_names,
        [row[0] for row in rows],
        [row[1] for row in rows],
        decode([row[2] for row in rows], len(feature_names)),
    )
