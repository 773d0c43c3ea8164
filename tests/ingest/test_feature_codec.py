"""The stored feature format: float32 bit for bit, NaN for null, and nothing it cannot hold."""

from __future__ import annotations

import numpy as np
import pytest

from cloud.ingest.feature_codec import FLOAT32, decode, encode, pack, row_bytes, to_matrix

EDGES = [0.0, -0.0, 1.5, -2.25, 1e-45, -1e-40, 3.4028234663852886e38, -3.4028234663852886e38, 1 / 3]


def test_float32_values_survive_the_round_trip_bit_for_bit_and_null_becomes_nan():
    rng = np.random.default_rng(7)
    random = rng.standard_normal((50, 9)).astype(np.float32) * np.float32(1e6)
    rows = [[float(v) for v in row] for row in random] + [EDGES, [None, *EDGES[1:]]]
    stored = decode(encode(to_matrix(rows)), len(EDGES))

    expected = np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float32)
    assert stored.dtype == FLOAT32 and stored.shape == (52, 9)
    assert stored.view(np.uint32).tobytes() == expected.view(np.uint32).tobytes()
    assert np.isnan(stored[-1, 0]) and not np.isnan(stored[:-1]).any()
    assert np.signbit(stored[-2, 1])  # -0.0 stays negative zero


def test_each_blob_is_the_row_little_endian_and_pack_is_the_blobs_back_to_back():
    matrix = to_matrix([[1.0, None], [-2.0, 0.5]])
    blobs = encode(matrix)
    assert blobs[0] == np.array([1.0, np.nan], dtype="<f4").tobytes()
    assert all(len(blob) == row_bytes(2) == 8 for blob in blobs)
    assert pack(matrix) == b"".join(blobs)


@pytest.mark.parametrize(
    ("rows", "message"),
    [([[1.0], [1.0, 2.0]], "inhomogeneous"), ([[1e39, 0.0]], "float32"), ([[-1e300]], "float32"), ([1.0], "matrix")],
)
def test_what_has_no_float32_matrix_form_is_refused(rows, message):
    with pytest.raises(ValueError, match=message):
        to_matrix(rows)


def test_blobs_that_are_not_whole_rows_are_refused():
    with pytest.raises(ValueError, match="whole rows"):
        decode([b"\x00" * 12], 2)
