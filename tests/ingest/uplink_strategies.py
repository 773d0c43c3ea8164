"""Hypothesis strategies for uplink messages: valid ones with values at their bounds, and hostile variants.

A message is drawn as a JSON-able dict, valid for its channel, with boundary values inside the contract (0,
2**53 - 1, float32's largest, 64-character names, 1970 and 2199, every offset). A hostile variant then replaces one
value anywhere in it (NaN/Infinity tokens, 1e400, 2**64, 2**63, deep nesting, far dates, wrong types, odd unicode,
oversized text), drops or adds a field, names another gateway, or is not JSON at all. ``Raw`` text goes into the
JSON as is, so tokens no JSON encoder writes reach the decoder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from shared.limits import EARLIEST, FLOAT32_MAX, LATEST, MAX_SAFE_INT
from shared.messages import MAX_PAYLOAD_BYTES, Arm, Component, EventKind, FeedbackSource, OutcomeResult, PredictionType
from shared.topics import Up, up_topic

NOW = datetime.now(UTC)
GATEWAYS = [f"gw-{i}" for i in range(6)] + ["G" * 64, "g.w_1-"]
DEVICES = [f"heater-{i}" for i in range(10)] + ["H" * 64, "0._-"]
MODELS = ["component_failure", "usage_pattern", "anomaly", "m" * 64]


@dataclass(frozen=True)
class Raw:
    """JSON text placed as is."""

    text: str


def to_payload(value: Any, ensure_ascii: bool = True) -> bytes:
    """JSON with every ``Raw`` spliced in as its text."""
    raws: list[str] = []

    def mark(v: Any) -> Any:
        if isinstance(v, Raw):
            raws.append(v.text)
            return f"\x00raw{len(raws) - 1}\x00"
        if isinstance(v, dict):
            return {k: mark(x) for k, x in v.items()}
        if isinstance(v, list):
            return [mark(x) for x in v]
        return v

    text = json.dumps(mark(value), ensure_ascii=ensure_ascii)
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\x00raw{i}\x00", ensure_ascii=ensure_ascii), raw)
    return text.encode()


# -- values --------------------------------------------------------------------------------------------------

EDGE_INTS = [0, 1, -1, 2**31 - 1, MAX_SAFE_INT, MAX_SAFE_INT + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**40]
EDGE_FLOATS = [
    -0.0,
    5e-324,
    1.4e-45,
    FLOAT32_MAX,
    3.4028235677973366e38,  # the first double that rounds to float32 infinity
    -FLOAT32_MAX,
    1e308,
    -1e308,
    1.7976931348623157e308,
    1e9 + 1,
    3_600_000.5,
]
TOKENS = [
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-Infinity"),
    Raw("1e400"),
    Raw("-1e400"),
    Raw("1" + "0" * 400),
    Raw("[" * 3000 + "]" * 3000),
    Raw('{"a":' * 3000 + "1" + "}" * 3000),
]
ODD_TEXT = ["", "x" * 65, "x" * 4001, "\u202e\u200b\ufeff", "\x00", "\U0001f600" * 40, "'; DROP TABLE x;--", "%s%n"]
FAR_TIMES = [
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00Z",
    "0999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999Z",
    "1969-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z",
    "2026-03-01T12:00:00",
    "2026-13-01T00:00:00Z",
    -62135596800,
    10**20,
]
hostile_values = st.one_of(
    st.sampled_from(TOKENS),
    st.sampled_from(EDGE_INTS + EDGE_FLOATS),
    st.sampled_from(ODD_TEXT + FAR_TIMES + [None, True, [], {}, [1, "a"], {"a": 1}]),
    st.integers(),
    st.floats(),  # NaN and infinities too: json.dumps writes them as tokens
    st.text(max_size=80),
)

ints = st.one_of(st.sampled_from([0, 1, MAX_SAFE_INT]), st.integers(0, MAX_SAFE_INT))
sequences = st.one_of(st.none(), st.sampled_from([1, MAX_SAFE_INT]), st.integers(1, MAX_SAFE_INT))
names = st.one_of(
    st.sampled_from(["a", "n" * 64, "temp_mean", "é", "\U0001f600", "champion"]), st.text(min_size=1, max_size=64)
)
versions = st.one_of(st.sampled_from(["1", "2", "10", "v" * 32, "1.2.0"]), st.text(min_size=1, max_size=32))
texts = st.one_of(st.sampled_from(["", "x" * 4000, "\u202e\x00\U0001f600"]), st.text(max_size=120))
hex_ids = st.one_of(st.uuids().map(lambda u: u.hex), st.sampled_from(["i" * 8, "i" * 64]))
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
times = st.one_of(
    st.sampled_from(["1970-01-01T00:00:00Z", "2199-12-31T23:59:59.999999Z", "1970-01-01T13:59:00+14:00"]),
    st.integers(0, 20 * 86400).map(lambda s: (NOW - timedelta(seconds=s)).isoformat()),
    # any microsecond of the span at any offset: two draws, where st.datetimes takes one per field
    st.tuples(st.integers(86400 * 10**6, (LATEST - EARLIEST).days * 86400 * 10**6 - 86400 * 10**6), offsets).map(
        lambda t: (EARLIEST + timedelta(microseconds=t[0])).astimezone(t[1]).isoformat()
    ),
)


def finite(bound: float) -> st.SearchStrategy[float]:
    return st.one_of(
        st.sampled_from([0.0, -0.0, bound, -bound, 5e-324]),
        st.floats(min_value=-bound, max_value=bound, allow_nan=False, allow_infinity=False),
    )


# -- valid messages, per channel -----------------------------------------------------------------------------


def envelope(gateway: str, **fields: Any) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {"schema": st.just(1), "msg_id": hex_ids, "sent_at": times, "gateway_id": st.just(gateway), **fields}
    )


def _version_of(feature_names: list[str]) -> str:
    return hashlib.sha256(repr(feature_names).encode()).hexdigest()[:16]


@st.composite
def features(draw: st.DrawFn, gateway: str) -> dict:
    feature_names = draw(st.lists(names, min_size=1, max_size=3))
    row = st.fixed_dictionaries(
        {
            "device_id": st.sampled_from(DEVICES),
            "device_type": st.sampled_from(["tank-50", "t" * 64]),
            "window_end": times,
            "values": st.lists(
                st.none() | finite(FLOAT32_MAX), min_size=len(feature_names), max_size=len(feature_names)
            ),
        }
    )
    fields = {
        # a version names its features: mostly one of their own, at times one that names others (a conflict)
        "feature_set_version": st.sampled_from(
            ["fs1", "f" * 16, _version_of(feature_names)] + [_version_of(feature_names)] * 8
        ),
        "feature_names": st.just(feature_names),
        "rows": st.lists(row, min_size=1, max_size=2),
    }
    return draw(envelope(gateway, **fields))


def predictions(gateway: str) -> st.SearchStrategy[dict]:
    prediction = st.fixed_dictionaries(
        {
            "prediction_id": hex_ids,
            "device_id": st.sampled_from(DEVICES),
            "device_type": st.sampled_from(["tank-50", "t" * 64]),
            "prediction_type": st.sampled_from([t.value for t in PredictionType]),
            "model_name": st.sampled_from(MODELS),
            "model_version": st.sampled_from(["1", "2", "v" * 32]),
            "arm": st.sampled_from([a.value for a in Arm]),
            "outputs": st.dictionaries(
                st.sampled_from([c.value for c in Component] + ["litres_24h", "score"]) | names,
                finite(FLOAT32_MAX),
                max_size=4,
            ),
            "latency_ms": finite(3_600_000.0).map(abs),
            "made_at": times,
            "feature_window_end": st.none() | times,
        }
    )
    return envelope(gateway, predictions=st.lists(prediction, min_size=1, max_size=2))


def outcomes(gateway: str) -> st.SearchStrategy[dict]:
    outcome = st.fixed_dictionaries(
        {
            "outcome_id": hex_ids,
            "device_id": st.sampled_from(DEVICES),
            "source": st.sampled_from([s.value for s in FeedbackSource]),
            "observed_at": times,
            "prediction_id": st.none() | hex_ids,
            "component": st.none() | st.sampled_from([c.value for c in Component]),
            "result": st.none() | st.sampled_from([r.value for r in OutcomeResult]),
            "value": st.none() | finite(1e9),
            "technician": st.none() | st.text(max_size=128),
            "notes": st.none() | texts,
        }
    )
    return envelope(gateway, outcomes=st.lists(outcome, min_size=1, max_size=2))


def status(gateway: str) -> st.SearchStrategy[dict]:
    counters = st.dictionaries(names, ints, max_size=3)
    model = st.fixed_dictionaries(
        {
            "model_name": st.sampled_from(MODELS),
            "active_version": st.none() | versions,
            "installed_versions": st.lists(versions, max_size=3),
            "state": st.sampled_from(["none", "probation", "committed", "rolled_back"]),
            "challenger_version": st.none() | versions,
            "experiment_id": st.none() | names,
            "experiment_mode": st.sampled_from([None, "shadow", "split"]),
            "predictions": counters,
            "failures": counters,
        }
    )
    return envelope(
        gateway,
        online=st.booleans(),
        agent_version=versions,
        models=st.lists(model, max_size=2),
        director_sequence=sequences,
        outbox_depth=ints,
        dropped=counters,
        health=st.sampled_from(["ok", "degraded", "offline"]),
        heaters=ints,
    )


def events(gateway: str) -> st.SearchStrategy[dict]:
    return envelope(
        gateway,
        kind=st.sampled_from([k.value for k in EventKind]),
        model_name=st.none() | st.sampled_from(MODELS),
        model_version=st.none() | versions,
        director_sequence=sequences,
        document_digest=st.none() | st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
        rule=st.none() | names,
        detail=texts,
    )


VALID = {
    Up.FEATURES: features,
    Up.PREDICTIONS: predictions,
    Up.OUTCOMES: outcomes,
    Up.STATUS: status,
    Up.EVENTS: events,
}


# -- hostile variants ----------------------------------------------------------------------------------------


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replaced(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (_replaced(v, rest, new) if k == head else v) for k, v in value.items()}
    return [(_replaced(v, rest, new) if i == head else v) for i, v in enumerate(value)]


def _removed(value: dict, path: tuple) -> Any:
    if len(path) == 1:
        return {k: v for k, v in value.items() if k != path[0]} if isinstance(value, dict) else value
    head = path[0]
    if isinstance(value, dict):
        return {k: (_removed(v, path[1:]) if k == head else v) for k, v in value.items()}
    return [(_removed(v, path[1:]) if i == head else v) for i, v in enumerate(value)]


@st.composite
def uplink(draw: st.DrawFn, channel: Up, prefix: str) -> tuple[str, bytes]:
    """(topic, payload): a valid message about half the time, otherwise one of the hostile variants."""
    gateway = draw(st.sampled_from(GATEWAYS))
    message = draw(VALID[channel](gateway))
    if draw(st.integers(0, 9)):  # mostly an id of its content: drawn ids repeat often, and a repeat is a duplicate
        message["msg_id"] = hashlib.sha256(repr(message).encode()).hexdigest()[:32]
    topic = up_topic(gateway, channel, prefix)
    kind = draw(st.sampled_from(["valid"] * 8 + ["value"] * 6 + ["drop", "extra", "gateway", "topic", "bytes", "huge"]))
    paths = _paths(message)
    if kind == "value":
        message = _replaced(message, draw(st.sampled_from(paths)), draw(hostile_values))
    elif kind == "drop":
        message = _removed(message, draw(st.sampled_from(paths)))
    elif kind == "extra":
        message = {**message, draw(st.text(max_size=10)): draw(hostile_values)}
    elif kind == "gateway":
        message = {**message, "gateway_id": draw(st.sampled_from(GATEWAYS + ["", "a/b", "+", "x" * 65]))}
    elif kind == "topic":
        topic = f"{prefix}/gw/{gateway}/up/{draw(st.sampled_from(['firmware', 'status/extra', '']))}"
    elif kind == "bytes":
        return topic, draw(st.binary(max_size=64) | st.sampled_from([b"", b"{", b"null", b"[]", b"\xff\xfe"]))
    elif kind == "huge":
        message = {**message, "pad": "x" * MAX_PAYLOAD_BYTES}
    return topic, to_payload(message, ensure_ascii=draw(st.booleans()))
