"""Inference on a real exported model in onnxruntime: labelled outputs, one prediction per targeted heater."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from edge_agent.inference import Heater, predict
from edge_agent.model_loader import load_model
from shared.messages import Arm, Prediction, PredictionBatch, PredictionType
from tests.edge.releases import LABELS, build_release

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
HEATERS = [Heater("wh-1", "nwp500-50"), Heater("wh-2", "nwp500-65"), Heater("wh-3", "nwp500-50")]


@pytest.fixture(scope="module")
def model():
    built = build_release()
    return load_model(built.onnx_bytes, built.release)


def test_each_heater_gets_labelled_probabilities_from_the_model(model):
    rows = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    predictions = predict({"component_failure": model}, rows, HEATERS, window_end=NOW, made_at=NOW)

    expected = model.run(rows)["probabilities"]
    assert [p.device_id for p in predictions] == ["wh-1", "wh-2", "wh-3"]
    for prediction, row in zip(predictions, expected, strict=True):
        assert list(prediction.outputs) == LABELS
        np.testing.assert_allclose([prediction.outputs[label] for label in LABELS], row, rtol=1e-6)
        assert prediction.prediction_type is PredictionType.COMPONENT_FAILURE
        assert (prediction.model_name, prediction.model_version, prediction.arm) == (
            "component_failure",
            "1",
            Arm.CHAMPION,
        )
        assert prediction.feature_window_end == NOW and prediction.latency_ms > 0
    assert len({p.prediction_id for p in predictions}) == 3


def test_a_release_for_some_device_types_predicts_only_for_those(model):
    narrowed = model.release.model_copy(update={"device_types": ["nwp500-50"]})
    targeted = type(model)(release=narrowed, session=model.session, model_sha256=model.model_sha256)
    rows = np.zeros((3, 4), dtype=np.float32)
    predictions = predict({"component_failure": targeted}, rows, HEATERS, window_end=NOW, made_at=NOW)
    assert [p.device_id for p in predictions] == ["wh-1", "wh-3"]


def test_non_finite_outputs_are_left_out_not_sent_as_numbers(model):
    rows = np.full((1, 4), np.inf, dtype=np.float32)  # the imputer fills NaN, not infinity: outputs become NaN
    assert not np.isfinite(model.run(rows)["probabilities"]).all()
    (prediction,) = predict({"component_failure": model}, rows, HEATERS[:1], window_end=NOW, made_at=NOW)
    assert len(prediction.outputs) < len(LABELS) and all(np.isfinite(list(prediction.outputs.values())))
    sent = PredictionBatch(gateway_id="gw-1", predictions=[prediction]).to_json()
    assert PredictionBatch.model_validate_json(sent).predictions == [prediction]  # ingest takes it (JSON has no NaN)


def test_predictions_are_what_validation_would_make_of_them(model):
    """Built by copying a validated template, each prediction still equals its validated self, and ingest takes it."""
    rows = np.random.default_rng(2).normal(size=(3, 4)).astype(np.float32)
    predictions = predict({"component_failure": model}, rows, HEATERS, window_end=NOW, made_at=NOW)
    for prediction in predictions:
        validated = Prediction.model_validate(prediction.model_dump())
        assert validated == prediction and validated.model_dump_json() == prediction.model_dump_json()
        assert prediction.model_fields_set == set(Prediction.model_fields)
        assert len(prediction.prediction_id) == 32 and int(prediction.prediction_id, 16) >= 0
    batch = PredictionBatch(gateway_id="gw-1", predictions=predictions)
    assert PredictionBatch.model_validate_json(batch.to_json()).predictions == predictions


def test_times_are_sent_in_utc_and_naive_ones_refused(model):
    rows = np.zeros((1, 4), dtype=np.float32)
    local = NOW.astimezone(timezone(timedelta(hours=2)))
    (prediction,) = predict({"component_failure": model}, rows, HEATERS[:1], window_end=local, made_at=local)
    assert prediction.made_at == NOW and prediction.made_at.utcoffset() == timedelta(0)
    assert prediction.feature_window_end.tzinfo is UTC
    with pytest.raises(ValueError, match="UTC offset"):
        predict({"component_failure": model}, rows, HEATERS[:1], window_end=NOW, made_at=NOW.replace(tzinfo=None))
