"""Every model type through ``cloud.training.models``: rows → train → ONNX → evaluate on a later period."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import onnxruntime as ort
import pytest

from cloud.feature_store import FeatureStore
from cloud.training import anomaly, component_failure, usage_pattern
from cloud.training.common import onnx_outputs
from cloud.training.data import LabelledRows, rows_from_dataset, rows_from_history, time_split
from cloud.training.labels import CLASSES
from cloud.training.models import evaluate, train
from shared.messages import PredictionType
from tests.training.conftest import HORIZON

#: one quick estimator per type keeps the suite fast; the CLI test compares several
QUICK = {
    PredictionType.COMPONENT_FAILURE: "logistic_regression",
    PredictionType.USAGE_PATTERN: "ridge",
    PredictionType.ANOMALY: "isolation_forest",
}
LIMITS = {
    PredictionType.COMPONENT_FAILURE: component_failure.MAX_ONNX_DISAGREEMENT,
    PredictionType.USAGE_PATTERN: usage_pattern.MAX_ONNX_DISAGREEMENT_LITRES,
    PredictionType.ANOMALY: anomaly.MAX_ONNX_DISAGREEMENT,
}
SERVED = {
    PredictionType.COMPONENT_FAILURE: "probabilities",
    PredictionType.USAGE_PATTERN: "variable",
    PredictionType.ANOMALY: "scores",
}


def _shuffled(rows: LabelledRows) -> LabelledRows:
    return replace(rows, targets=np.random.default_rng(0).permutation(rows.targets))


def _check_trained_and_scored(prediction_type: PredictionType, rows: LabelledRows) -> None:
    train_rows, holdout, holdout_from = time_split(rows, gap=HORIZON)
    assert train_rows.window_ends.max() + np.timedelta64(14, "D") <= holdout_from <= holdout.window_ends.min()
    trained = train(prediction_type, train_rows, candidates=[QUICK[prediction_type]], horizon=HORIZON)
    assert trained.metrics["onnx_vs_sklearn_max_abs_diff"] <= LIMITS[prediction_type]
    served = SERVED[prediction_type]
    assert list(trained.output_labels) == [served]

    # the golden vectors reproduce in onnxruntime from the exported bytes
    session = ort.InferenceSession(trained.exported.onnx_bytes, providers=["CPUExecutionProvider"])
    golden = trained.golden
    got = session.run([served], {"features": np.array(golden.inputs, dtype=np.float32)})[0]
    assert np.allclose(got.reshape(len(golden.inputs), -1), golden.expected[served], atol=golden.abs_tolerance)

    evaluation = evaluate(prediction_type, trained.exported.onnx_bytes, trained.output_labels, holdout)
    scored = holdout.targets >= 0 if prediction_type != PredictionType.USAGE_PATTERN else np.isfinite(holdout.targets)
    assert evaluation.rows == int(scored.sum())
    # score direction: the real model beats one that learnt from (or is judged on) shuffled targets
    if prediction_type == PredictionType.ANOMALY:  # unsupervised: the targets only judge, so shuffle those
        chance = evaluate(prediction_type, trained.exported.onnx_bytes, trained.output_labels, _shuffled(holdout))
    else:
        noise = train(prediction_type, _shuffled(train_rows), candidates=[QUICK[prediction_type]], horizon=HORIZON)
        chance = evaluate(prediction_type, noise.exported.onnx_bytes, noise.output_labels, holdout)
    assert evaluation.score > chance.score, (evaluation, chance)
    assert evaluation.score_name == chance.score_name


@pytest.mark.parametrize("prediction_type", list(PredictionType))
def test_each_type_trains_from_history_and_beats_a_shuffled_model_on_a_later_period(history, prediction_type):
    _check_trained_and_scored(prediction_type, rows_from_history(history, prediction_type, HORIZON))


@pytest.mark.parametrize("prediction_type", list(PredictionType))
def test_each_type_trains_from_a_feature_store_dataset(history, fleet_db, prediction_type):
    start = history.window_end.min().astype(datetime).replace(tzinfo=UTC)
    end = history.window_end.max().astype(datetime).replace(tzinfo=UTC) + timedelta(seconds=1)
    dataset = FeatureStore(fleet_db).get_training_dataset(
        None, start, end, horizon=HORIZON, as_of=end + timedelta(days=2), prediction_type=prediction_type
    )
    rows = rows_from_dataset(dataset)
    assert rows.dataset_id == dataset.record.dataset_id and rows.prediction_type == prediction_type
    from_history = rows_from_history(history, prediction_type, HORIZON)
    if prediction_type == PredictionType.USAGE_PATTERN:  # the same litres, through sensor outcomes
        assert len(rows) == len(from_history)
        assert np.allclose(np.sort(rows.targets), np.sort(from_history.targets), atol=1e-3)
    _check_trained_and_scored(prediction_type, rows)


def test_component_evaluation_reports_lead_times_with_the_models_own_thresholds(history):
    rows = rows_from_history(history, PredictionType.COMPONENT_FAILURE, HORIZON)
    # half held out: only failures with a whole horizon of held-out rows before them count, and 90 days are few
    train_rows, holdout, _ = time_split(rows, holdout_fraction=0.5, gap=HORIZON)
    trained = train(PredictionType.COMPONENT_FAILURE, train_rows, candidates=["random_forest"], horizon=HORIZON)
    evaluation = evaluate(PredictionType.COMPONENT_FAILURE, trained.exported.onnx_bytes, trained.output_labels, holdout)
    per_component = evaluation.metrics["per_component"]
    assert sum(c["failures"] for c in per_component.values()) > 0
    assert sum(c["detected"] for c in per_component.values()) > 0
    assert {name: c["threshold"] for name, c in per_component.items()} == trained.metrics["thresholds"]
    assert evaluation.metrics["mean_roc_auc"] > 0.75
    assert trained.output_labels["probabilities"][0] == "none"
    assert set(trained.output_labels["probabilities"]) <= set(CLASSES)


def test_evaluate_refuses_rows_of_another_width_or_without_targets(history):
    rows = rows_from_history(history, PredictionType.USAGE_PATTERN, HORIZON)
    trained = train(PredictionType.USAGE_PATTERN, rows, candidates=["ridge"])
    narrow = replace(rows, values=rows.values[:, :-1])
    with pytest.raises(ValueError, match="takes 32 features but the rows have 31"):
        evaluate(PredictionType.USAGE_PATTERN, trained.exported.onnx_bytes, trained.output_labels, narrow)
    unknown = replace(rows, targets=np.full(len(rows), np.nan))
    with pytest.raises(ValueError, match="no usable usage_pattern targets"):
        evaluate(PredictionType.USAGE_PATTERN, trained.exported.onnx_bytes, trained.output_labels, unknown)
    unlabelled = rows_from_history(history, PredictionType.ANOMALY, HORIZON)
    unlabelled = replace(unlabelled, targets=np.full(len(unlabelled), -1))
    with pytest.raises(ValueError, match="no usable anomaly targets"):
        evaluate(PredictionType.ANOMALY, b"unused", {"scores": ["anomaly_score"]}, unlabelled)
    with pytest.raises(ValueError, match="cannot train or score"):
        evaluate(PredictionType.ANOMALY, trained.exported.onnx_bytes, trained.output_labels, rows)


def test_time_split_says_when_a_side_is_empty(history):
    rows = rows_from_history(history, PredictionType.USAGE_PATTERN, HORIZON)
    short = rows.take(rows.window_ends < rows.window_ends.min() + np.timedelta64(10, "D"))
    with pytest.raises(ValueError, match="not enough labelled history to split by time: 0 training"):
        time_split(short, gap=timedelta(days=14))


@pytest.mark.parametrize("prediction_type", list(PredictionType))
def test_a_feature_without_any_value_in_the_fitted_rows_is_refused_clearly(history, prediction_type):
    # as at a fleet's start, while the feature windows fill: gradient boosting would fail with
    # "window shape cannot be larger than input array shape", the others fit a model blind to the feature
    rows = rows_from_history(history, prediction_type, HORIZON)
    values = rows.values.copy()
    values[:, rows.feature_names.index("inlet_temperature_c")] = np.nan
    with pytest.raises(ValueError, match=r"1 of 32 features have no value in the .* rows .*\(inlet_temperature_c\)"):
        train(prediction_type, replace(rows, values=values), candidates=[QUICK[prediction_type]], horizon=HORIZON)


def test_anomaly_rows_keep_unlabelled_rows_and_usage_rows_only_measured_ones(history):
    anomaly_rows = rows_from_history(history, PredictionType.ANOMALY, HORIZON)
    assert len(anomaly_rows) == len(history.features) and (anomaly_rows.targets == -1).any()
    usage_rows = rows_from_history(history, PredictionType.USAGE_PATTERN, HORIZON)
    assert len(usage_rows) == int(np.isfinite(history.usage_next_24h_litres).sum())
    assert (np.diff(usage_rows.window_ends.astype(np.int64)) >= 0).all()


def test_component_failure_fits_on_every_failure_and_a_share_of_healthy_rows_keeping_the_class_balance(history):
    rows = rows_from_history(history, PredictionType.COMPONENT_FAILURE, HORIZON)
    train_rows, _, _ = time_split(rows, gap=HORIZON)
    healthy = train_rows.targets == CLASSES.index("none")
    trained = train(PredictionType.COMPONENT_FAILURE, train_rows, candidates=["logistic_regression"], horizon=HORIZON)
    fitted_healthy = trained.metrics["fit_rows"] - int((~healthy).sum())
    assert trained.metrics["train_rows"] == len(train_rows)
    assert fitted_healthy == pytest.approx(component_failure.HEALTHY_SHARE * healthy.sum(), rel=0.05)
    # the kept healthy rows weigh for the dropped ones: served P(none) averages the whole rows' healthy share
    # (unweighted, the thinned rows taught 0.981 against 0.989 on this history)
    proba = onnx_outputs(trained.exported.onnx_bytes, "probabilities", train_rows)
    assert proba[:, 0].mean() == pytest.approx(healthy.mean(), abs=0.005)
