import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.messages import MAX_PAYLOAD_BYTES, FeatureBatch, FeatureRow, Prediction, PredictionBatch, parse_up


def _batch(**overrides) -> FeatureBatch:
    fields = dict(
        gateway_id="gw1",
        feature_set_version="v1",
        feature_names=["a", "b"],
        rows=[FeatureRow(device_id="wh1", device_type="nwp500-50", window_end=datetime.now(UTC), values=[1.0, None])],
    )
    return FeatureBatch(**{**fields, **overrides})


def test_round_trip_through_json_keeps_schema_and_msg_id():
    batch = _batch()
    body = json.loads(batch.to_json())
    assert body["schema"] == 1 and len(body["msg_id"]) == 32
    assert parse_up("features", batch.to_json()) == batch


def test_rows_must_align_with_names():
    with pytest.raises(ValidationError, match="2 names"):
        _batch(rows=[FeatureRow(device_id="wh1", device_type="t", window_end=datetime.now(UTC), values=[1.0])])


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"schema": 2, "gateway_id": "gw1", "feature_set_version": "v1", "feature_names": ["a"], "rows": []}',
        b'{"schema": 1, "gateway_id": "gw1", "unexpected": 1}',
    ],
)
def test_invalid_payloads_raise_value_errors(payload):
    with pytest.raises(ValueError):
        parse_up("features", payload)


def test_naive_timestamps_and_non_finite_values_are_refused():
    with pytest.raises(ValidationError, match="UTC offset"):
        FeatureRow(device_id="wh1", device_type="t", window_end=datetime(2026, 1, 1), values=[1.0])
    with pytest.raises(ValidationError, match="finite"):
        FeatureRow(device_id="wh1", device_type="t", window_end=datetime.now(UTC), values=[float("nan")])


def test_oversized_payload_is_refused_before_parsing():
    with pytest.raises(ValueError, match="exceeds"):
        parse_up("features", b" " * (MAX_PAYLOAD_BYTES + 1))


def test_prediction_batch_validates_types():
    p = Prediction(
        prediction_id="p" * 16,
        device_id="wh1",
        device_type="t",
        prediction_type="component_failure",
        model_name="component_failure",
        model_version="1",
        outputs={"sediment": 0.2},
        latency_ms=0.4,
        made_at=datetime.now(UTC),
    )
    assert parse_up("predictions", PredictionBatch(gateway_id="gw1", predictions=[p]).to_json()).predictions == [p]
    with pytest.raises(ValidationError):
        Prediction(**{**p.model_dump(), "prediction_type": "weather"})
