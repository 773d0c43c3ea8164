"""Values a store cannot hold, or that readers fail on once stored, are refused by ``decode`` with a reason:
each of these was stored (or raised out of ``decode``) before the wire was bounded."""

from __future__ import annotations

import json

import pytest

from cloud.ingest.decode import Rejected, decode
from shared.topics import Up, up_topic
from tests.ingest.helpers import event, features, outcomes, predictions, status

PREFIX = "t"


def _with(message, path: str, raw: str) -> bytes:
    """The message's JSON with the value at ``path`` (dotted, list indices as numbers) replaced by raw JSON text."""
    document = json.loads(message.to_json())
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target = document
    for key in parents:
        target = target[key]
    target[last] = "\x00raw\x00"
    return json.dumps(document).replace('"\\u0000raw\\u0000"', raw).encode()


CASES = {
    "outputs Infinity": (predictions(), Up.PREDICTIONS, "predictions.0.outputs.heating_element", "Infinity"),
    "outputs NaN": (predictions(), Up.PREDICTIONS, "predictions.0.outputs.heating_element", "NaN"),
    "outputs 1e400": (predictions(), Up.PREDICTIONS, "predictions.0.outputs.heating_element", "1e400"),
    "outputs beyond float32": (predictions(), Up.PREDICTIONS, "predictions.0.outputs.heating_element", "1e39"),
    "latency -Infinity": (predictions(), Up.PREDICTIONS, "predictions.0.latency_ms", "-Infinity"),
    "latency of days": (predictions(), Up.PREDICTIONS, "predictions.0.latency_ms", "1e12"),
    "made at year 1 with an offset": (
        predictions(),
        Up.PREDICTIONS,
        "predictions.0.made_at",
        '"0001-01-01T00:00:00+01:00"',
    ),
    "made at year 999": (predictions(), Up.PREDICTIONS, "predictions.0.made_at", '"0999-06-01T00:00:00Z"'),
    "outcome value Infinity": (outcomes(), Up.OUTCOMES, "outcomes.0.value", "Infinity"),
    "outcome value 1e300": (outcomes(), Up.OUTCOMES, "outcomes.0.value", "1e300"),
    "observed in 9999": (outcomes(), Up.OUTCOMES, "outcomes.0.observed_at", '"9999-12-31T23:59:59-14:00"'),
    "window end in 9999": (features(), Up.FEATURES, "rows.0.window_end", '"9999-12-31T23:59:59-01:00"'),
    "feature name of 65": (features(), Up.FEATURES, "feature_names.0", json.dumps("n" * 65)),
    "status sequence 2**64": (status(), Up.STATUS, "director_sequence", str(2**64)),
    "outbox depth 2**63": (status(), Up.STATUS, "outbox_depth", str(2**63)),
    "dropped 2**64": (status(), Up.STATUS, "dropped", json.dumps({"features": 2**64})),
    "agent version of 4 KB": (status(), Up.STATUS, "agent_version", json.dumps("v" * 4096)),
    "model counters 2**53": (
        status(models=[{"model_name": "m", "predictions": {"champion": 1}}]),
        Up.STATUS,
        "models.0.predictions.champion",
        str(2**53),
    ),
    "event sequence 2**63": (event(), Up.EVENTS, "director_sequence", str(2**63)),
    "event rule of 4 KB": (event(), Up.EVENTS, "rule", json.dumps("r" * 4096)),
    "sent at year 1": (event(), Up.EVENTS, "sent_at", '"0001-01-01T00:00:00+00:01"'),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_value_no_store_or_reader_can_hold_is_refused_with_its_field_named(case):
    message, channel, path, raw = case
    topic = up_topic(message.gateway_id, channel, PREFIX)
    decoded = decode(topic, _with(message, path, raw), PREFIX)
    assert isinstance(decoded, Rejected)
    assert decoded.reason.startswith("invalid: ") and path.split(".")[-1] in decoded.reason, decoded.reason
