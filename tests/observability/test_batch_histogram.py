"""The edge-latency histogram observes a batch at a time and exposes exactly what prometheus-client's own
Histogram exposes for the same values, one ``observe`` each."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cloud.observability.metrics import BatchHistogram

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def _exposed(collector) -> dict[tuple, float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_a_batch_is_exposed_as_one_observe_per_value():
    rng = np.random.default_rng(7)
    # bounds themselves (a value equal to a bound is in that bucket), below the first, above the last
    values = np.concatenate([rng.lognormal(-5, 1.5, 500), np.asarray(BUCKETS), [0.0, 3.0]])
    batch = BatchHistogram("latency_seconds", "help", ["model", "version"], BUCKETS)
    reference = Histogram("latency_seconds", "help", ["model", "version"], buckets=BUCKETS, registry=None)
    for labels, part in ((("cf", "1"), values[:300]), (("cf", "1"), values[300:]), (("anomaly", "2"), values[:5])):
        batch.observe_many(labels, part)
        child = reference.labels(*labels)
        for value in part:
            child.observe(float(value))
    ours, theirs = _exposed(batch), _exposed(reference)
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():  # counts exactly; sums up to the order the values were added in
        assert ours[key] == (pytest.approx(value, rel=1e-12) if key[0].endswith("_sum") else value), key
