"""build_reference: kinds by the feature's nature, a sketch within its documented error, small JSON, segments."""

from __future__ import annotations

import json

import numpy as np

from cloud.monitoring.reference import MIN_SEGMENT_ROWS, SKETCH_SIZE, build_reference, feature_kind, sketch_error
from tests.drift.fleet import TYPES, devices, feature_values, labelled_rows, register
from tests.drift.test_detect import db  # noqa: F401 (fixture)


def _rows(values: np.ndarray):
    return labelled_rows(values, devices(len(values))[0])


def test_kinds_follow_the_features_units_and_distinct_values():
    rng = np.random.default_rng(1)
    assert feature_kind("heating_cycles", rng.normal(10, 3, 1000)) == "binned"  # a count per day, whatever its spread
    assert feature_kind("coverage", np.where(rng.random(1000) < 0.5, 1.0, rng.random(1000))) == "binned"  # ties
    assert feature_kind("setpoint_c", rng.choice([49.0, 55.0, 60.0], 1000)) == "categorical"
    assert feature_kind("inlet_temperature_c", rng.normal(12, 3, 1000)) == "continuous"
    assert feature_kind("not_a_shared_feature", rng.normal(0, 1, 1000)) == "continuous"
    assert feature_kind("energy_wh", np.array([], np.float32)) == "empty"


def test_the_sketch_cdf_is_within_half_a_step_of_the_training_rows_cdf():
    values = feature_values(5_000, seed=2)
    reference = json.loads(json.dumps(build_reference(_rows(values), None)))
    column = values[:, 2].astype(np.float64)  # inlet_temperature_c
    sketch = np.asarray(reference["all"]["features"]["inlet_temperature_c"]["sketch"])
    points = np.concatenate([column, sketch])
    own = np.searchsorted(np.sort(column), points, side="right") / column.size
    sketched = np.searchsorted(sketch, points, side="right") / sketch.size
    assert len(sketch) == SKETCH_SIZE and np.abs(own - sketched).max() <= sketch_error(SKETCH_SIZE, column.size)


def test_reference_is_small_json_with_a_segment_per_device_type_that_has_enough_rows():
    values = feature_values(60_000, seed=3)
    ids, types = devices(len(values))
    ids[:100] = "wh-solo"  # a heater of its own type with 100 rows: too few for a segment
    types["wh-solo"] = "rare-type"
    reference = build_reference(labelled_rows(values, ids), types)

    assert len(json.dumps(reference)) < 300_000
    assert set(reference["segments"]) == set(TYPES) and MIN_SEGMENT_ROWS > 100
    assert reference["all"]["rows"] == 60_000 and reference["feature_names"][0] == "coverage"
    for segment in reference["segments"].values():
        for name, summary in segment["features"].items():
            whole = reference["all"]["features"][name]
            assert summary["kind"] == whole["kind"]
            assert summary.get("cuts") == whole.get("cuts") and summary.get("categories") == whole.get("categories")
    counts = reference["all"]["features"]["heating_cycles"]
    assert counts["kind"] == "binned" and sum(counts["counts"]) == counts["count"] == 60_000
    assert reference["all"]["features"]["coverage"]["kind"] == "categorical"


def test_missing_values_are_counted_not_summarised():
    values = feature_values(2_000, seed=4)
    values[:500, 5] = np.nan
    values[:, 6] = np.nan
    features = build_reference(_rows(values), None)["all"]["features"]
    names = list(features)
    assert features[names[5]]["missing_rate"] == 0.25 and features[names[5]]["count"] == 1_500
    assert features[names[6]] == {"kind": "empty", "count": 0, "missing_rate": 1.0}


def test_the_reference_is_stored_with_the_version(db):  # noqa: F811
    version = register(db, feature_values(1_000, seed=5))
    [(stored,)] = db.execute("SELECT reference_json FROM model_references WHERE model_version = ?", [version])
    assert json.loads(stored)["all"]["rows"] == 1_000
