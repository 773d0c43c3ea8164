"""The KS statistic against a stored sketch is within ``sketch_error`` of ``scipy.stats.ks_2samp`` on the raw rows:
float32 values that cluster and tie (ratios of whole minutes, temperatures in sensor steps), float64, integers;
in memory, through the sketch's JSON encoding, and through a real training run's stored reference (its
``reference.json`` and the SQLite ``model_references`` row) against the rows it was trained on. Against the
sketch itself, D and the Wasserstein distance are scipy's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from cloud.feature_store import FeatureStore
from cloud.monitoring.drift_stats import compare_with_sketch
from cloud.monitoring.reference import (
    SKETCH_SIZE,
    device_types_of,
    load_reference,
    sketch_error,
    sketch_of,
    stored_values,
)
from cloud.pipeline.runs import RunStatus
from cloud.pipeline.training import LABEL_HORIZON, ModelTrainingPipeline, RunOptions
from cloud.registry import MLModelRegistry
from cloud.training.data import rows_from_dataset, time_split
from shared.messages import PredictionType
from tests.pipeline.conftest import config, db, fleet_database, fleet_history, span  # noqa: F401 (fixtures)

#: the sketch's own step: how far its CDF may sit from its rows' (``reference`` module doc)
HALF_STEP = 0.5 / SKETCH_SIZE


def _rows(kind: str, rng: np.random.Generator, size: int, shift: float) -> np.ndarray:
    """``size`` values of one family, moved by ``shift`` of its scale: float32 ratios of whole minutes (a duty
    cycle), float32 temperatures in 1/16 K sensor steps, float64 gamma draws, or integer Poisson counts."""
    if kind == "float32_ratio":
        minutes = rng.integers(10, 61, size)
        return (rng.binomial(minutes, min(0.3 + 0.2 * shift, 0.95)) / minutes).astype(np.float32)
    if kind == "float32_steps":
        return (np.round(rng.normal(12.0 + 3.0 * shift, 3.0, size) * 16) / 16).astype(np.float32)
    if kind == "float64":
        return rng.gamma(2.0, 3.0, size) + 3.0 * shift
    return rng.poisson(4.0 * (1 + shift), size)


def _stored_sketch(reference: np.ndarray) -> np.ndarray:
    """The sketch of ``reference`` as a check reads it back from its JSON."""
    return stored_values(json.loads(json.dumps(sketch_of(reference))))


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["float32_ratio", "float32_steps", "int"]),
    seed=st.integers(0, 2**32 - 1),
    reference_rows=st.integers(300, 20_000),
    current_rows=st.integers(1, 5_000),
    shift=st.sampled_from([0.0, 0.02, 0.1, 0.5]),
)
def test_ks_against_the_stored_sketch_is_within_the_bound_of_ks_2samp_on_raw_rows(
    kind, seed, reference_rows, current_rows, shift
):
    rng = np.random.default_rng(seed)
    reference, current = _rows(kind, rng, reference_rows, 0.0), _rows(kind, rng, current_rows, shift)
    sketch = _stored_sketch(reference)

    # every point read back is one of the rows' own values, so a tie in the rows is a tie with the sketch
    assert np.isin(sketch, reference.astype(np.float64)).all()
    own = compare_with_sketch(reference, sketch, reference.size).ks_statistic
    assert own <= HALF_STEP + 1e-12
    compared = compare_with_sketch(current, sketch, reference.size)
    exact = stats.ks_2samp(current, reference).statistic  # on the raw float32 or integer rows
    assert abs(compared.ks_statistic - exact) <= sketch_error(SKETCH_SIZE, reference.size) + 1e-12
    assert compared.ks_statistic == pytest.approx(stats.ks_2samp(current, sketch).statistic, abs=1e-12)
    assert compared.wasserstein == pytest.approx(stats.wasserstein_distance(current, sketch), rel=1e-9, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    reference_rows=st.integers(300, 20_000),
    current_rows=st.integers(1, 5_000),
    shift=st.sampled_from([0.0, 0.02, 0.1, 0.5]),
)
def test_ks_against_an_exact_float64_sketch_is_within_the_bound_of_ks_2samp(seed, reference_rows, current_rows, shift):
    # the comparison itself, on values a float32 cannot hold: the stored path keeps only float32 rows
    rng = np.random.default_rng(seed)
    reference, current = _rows("float64", rng, reference_rows, 0.0), _rows("float64", rng, current_rows, shift)
    sketch = np.quantile(reference, (np.arange(SKETCH_SIZE) + 0.5) / SKETCH_SIZE, method="inverted_cdf")
    compared = compare_with_sketch(current, sketch, reference.size)
    exact = stats.ks_2samp(current, reference).statistic
    assert abs(compared.ks_statistic - exact) <= sketch_error(SKETCH_SIZE, reference.size) + 1e-12
    assert compared.wasserstein == pytest.approx(stats.wasserstein_distance(current, sketch), rel=1e-9, abs=1e-12)


def test_integer_rows_are_not_truncated_against_a_fractional_sketch():
    # a sketch point between two counts: inserting it into an integer array would make it a count
    compared = compare_with_sketch(np.array([1, 2, 3, 4]), np.array([2.5]), 100)
    assert compared.ks_statistic == pytest.approx(0.5)
    assert compared.ks_statistic == pytest.approx(stats.ks_2samp([1, 2, 3, 4], [2.5]).statistic)


@pytest.mark.timeout(600)
def test_a_trained_versions_stored_reference_is_within_the_bound_on_its_own_training_rows(db, config, span):  # noqa: F811
    # the path a release takes: the pipeline trains, writes reference.json beside model.onnx and the SQLite row;
    # the check reads it back. Its training rows are rebuilt from the recorded dataset and the same time split.
    model = "usage_pattern"
    pipeline = ModelTrainingPipeline(db, config, passphrase="")
    queued = pipeline.trigger_model_training(model, *span, {"release": False, "candidates": ["ridge"]}, actor="tester")
    run = pipeline.run_next(queued.run_id)
    assert run.status == RunStatus.SUCCEEDED, run.error
    stored = load_reference(db, model, run.model_version)
    assert json.loads((config.artifacts_dir / model / run.model_version / "reference.json").read_text()) == stored

    lineage = json.loads(MLModelRegistry(db).get_version(model, run.model_version)["lineage_json"])
    rows = rows_from_dataset(FeatureStore(db).load_dataset(lineage["dataset_id"]))
    options = RunOptions.from_dict(run.options)
    train, holdout, _ = time_split(rows, options.holdout_fraction, LABEL_HORIZON[PredictionType(model)])
    assert stored["all"]["rows"] == len(train)
    types = device_types_of(db, rows.device_ids)
    train_types = np.array([types.get(d, "") for d in train.device_ids.tolist()])
    holdout_types = np.array([types.get(d, "") for d in holdout.device_ids.tolist()])

    checked, worst = 0, 0.0
    for segment, summary in [("all", stored["all"]), *stored["segments"].items()]:
        in_train = np.ones(len(train), bool) if segment == "all" else train_types == segment
        in_holdout = np.ones(len(holdout), bool) if segment == "all" else holdout_types == segment
        for column, name in enumerate(stored["feature_names"]):
            feature = summary["features"][name]
            if "sketch" not in feature:
                continue
            own = train.values[in_train, column]
            own = own[~np.isnan(own)]
            later = holdout.values[in_holdout, column]
            later = later[~np.isnan(later)]
            sketch, bound = stored_values(feature["sketch"]), sketch_error(SKETCH_SIZE, feature["count"])
            assert own.size == feature["count"]
            against_own = compare_with_sketch(own, sketch, own.size).ks_statistic
            assert against_own <= HALF_STEP + 1e-12, (segment, name, against_own)
            difference = abs(compare_with_sketch(later, sketch, own.size).ks_statistic - stats.ks_2samp(later, own)[0])
            assert difference <= bound + 1e-12, (segment, name, difference, bound)
            checked, worst = checked + 1, max(worst, against_own)
    assert checked > 40 and worst > 0  # every continuous and count feature of every segment
