"""The columnar ``up/features`` path accepts exactly what ``FeatureBatch`` accepts and says why as it does."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from cloud.ingest import feature_codec
from cloud.ingest.decode import Accepted, Rejected, _describe, decode
from cloud.ingest.feature_frame import FeatureFrame, WireFeatureRow
from shared.messages import FeatureRow, parse_up
from shared.topics import Up, up_topic
from tests.ingest.helpers import features

PREFIX = "t"
TOPIC = up_topic("gw1", Up.FEATURES, PREFIX)


def _good() -> dict:
    return json.loads(features(devices=("h1", "h2")).to_json())


def _row(change) -> dict:
    doc = _good()
    change(doc["rows"][1])
    return doc


BAD = {
    "extra field in a row": _row(lambda r: r.update(colour="red")),
    "missing window_end": _row(lambda r: r.pop("window_end")),
    "naive window_end": _row(lambda r: r.update(window_end="2026-03-01T12:00:00")),
    "not a time": _row(lambda r: r.update(window_end="yesterday")),
    "device id with a slash": _row(lambda r: r.update(device_id="h/1")),
    "empty device id": _row(lambda r: r.update(device_id="")),
    "device id too long": _row(lambda r: r.update(device_id="h" * 65)),
    "empty device type": _row(lambda r: r.update(device_type="")),
    "fewer values than names": _row(lambda r: r["values"].pop()),
    "a value that is text": _row(lambda r: r["values"].__setitem__(0, "warm")),
    "values not a list": _row(lambda r: r.update(values=1.0)),
    "no rows": {**_good(), "rows": []},
    "too many rows": {**_good(), "rows": _good()["rows"] * 501},
    "no names": {**_good(), "feature_names": []},
    "extra top-level field": {**_good(), "colour": "red"},
    "bad gateway id": {**_good(), "gateway_id": "gw#1"},
    "wrong schema": {**_good(), "schema": 2},
    "naive sent_at": {**_good(), "sent_at": "2026-03-01T12:00:00"},
    "rows not a list": {**_good(), "rows": {"device_id": "h1"}},
}
NON_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"1e999"]


def _contract_reason(payload: bytes) -> str | None:
    try:
        parse_up(Up.FEATURES, payload)
    except ValidationError as exc:
        return _describe(exc)
    return None


@pytest.mark.parametrize("name", BAD)
def test_what_the_contract_refuses_is_refused_with_the_contracts_reason(name):
    payload = json.dumps(BAD[name]).encode()
    expected = _contract_reason(payload)
    assert expected is not None, f"the contract should refuse: {name}"
    assert decode(TOPIC, payload, PREFIX) == Rejected(expected)


@pytest.mark.parametrize("literal", NON_FINITE)
def test_non_finite_values_are_refused(literal):
    marked = json.dumps(_row(lambda r: r["values"].__setitem__(0, 12345.5)))
    text = marked.replace("12345.5", "@").encode().replace(b"@", literal)
    expected = _contract_reason(text)
    assert expected is not None and decode(TOPIC, text, PREFIX) == Rejected(expected)


def test_a_finite_value_beyond_float32_is_refused_though_the_contract_allows_it():
    payload = json.dumps(_row(lambda r: r["values"].__setitem__(0, 1e39))).encode()
    assert _contract_reason(payload) is None
    decoded = decode(TOPIC, payload, PREFIX)
    assert isinstance(decoded, Rejected)
    assert decoded.reason.startswith("invalid: FeatureBatch: beyond float32") and "rows.1.values.0" in decoded.reason


def test_a_valid_batch_gives_the_contracts_rows_as_columns_with_utc_text():
    doc = _good()
    doc["rows"][1]["window_end"] = "2026-03-01T14:30:00+02:00"  # the same instant as 12:30Z
    payload = json.dumps(doc).encode()
    batch = parse_up(Up.FEATURES, payload)
    decoded = decode(TOPIC, payload, PREFIX)

    assert isinstance(decoded, Accepted) and isinstance(decoded.message, FeatureFrame)
    frame = decoded.message
    assert (frame.msg_id, frame.gateway_id, frame.feature_set_version) == (
        batch.msg_id,
        batch.gateway_id,
        batch.feature_set_version,
    )
    assert frame.feature_names == batch.feature_names
    assert frame.device_ids == ("h1", "h2") and frame.device_types == ("tank-50", "tank-50")
    assert frame.window_ends == ["2026-03-01T12:00:00.000000Z", "2026-03-01T12:30:00.000000Z"]
    np.testing.assert_array_equal(
        feature_codec.to_matrix(frame.values), np.array([r.values for r in batch.rows], dtype=np.float64)
    )


def test_the_wire_row_has_the_contracts_fields():
    assert set(WireFeatureRow.__annotations__) == set(FeatureRow.model_fields)
