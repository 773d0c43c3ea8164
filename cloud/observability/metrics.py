"""The counters and histograms cloud processes update as work happens, in this process's own registry.

Each process serves its own ``/metrics`` (the API's port; ``cloud ingest`` a port of its own) and Prometheus
scrapes each one as a target: processes share no memory and need none, since Prometheus sums across targets
(``sum by (channel) (rate(...))``). prometheus-client's multiprocess mode exists for pre-forked servers whose
workers share one port; ``cloud serve`` runs one uvicorn process with its workers as threads, so it would only
add a shared directory to clean up and lose custom collectors.

Names are stable: alert rules and dashboards use them (docs/operations.md lists each with its labels). Labels
have bounded values (channel, reason kind, model, version, route template): never a gateway or a heater.
What the database holds — gateways, deployments, runs, rollouts — is read at scrape time instead
(``cloud.observability.store_collector``).
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from shared.messages import PredictionBatch
from shared.topics import Up

disable_created_metrics()  # the *_created series double a scrape's size and no rule or dashboard here reads them

INGEST_MESSAGES = Counter(
    "iotsphere_ingest_messages", "Uplink messages stored (or found already stored) and acknowledged.", ["channel"]
)
INGEST_DEAD_LETTERS = Counter(
    "iotsphere_ingest_dead_letters", "Uplink messages kept as dead letters, by the kind of their reason.", ["reason"]
)
INGEST_STORAGE_ERRORS = Counter(
    "iotsphere_ingest_storage_errors", "Batches the database refused as a whole (left for the broker to redeliver)."
)
INGEST_BATCH_SECONDS = Histogram(
    "iotsphere_ingest_batch_store_seconds",
    "Time to store one batch and acknowledge it.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
PREDICTIONS = Counter(
    "iotsphere_predictions", "Predictions gateways reported, by model and version.", ["model", "version"]
)


class BatchHistogram:
    """A labelled histogram observed a batch at a time: one numpy pass per batch instead of one ``observe`` per
    value. Ingest takes up to 1000 predictions a batch, and prometheus-client's per-value ``observe`` (~1.5 µs) was
    4.7 % of the time to store a prediction (bench metrics); a collector of its own exposes the same series."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]):
        self.name, self.documentation, self.labelnames = name, documentation, list(labelnames)
        self.bounds = np.asarray(buckets, dtype=np.float64)
        #: label values → (count per bucket, the last one +Inf, not cumulative; sum of the values)
        self._series: dict[tuple[str, ...], tuple[np.ndarray, float]] = {}
        self._lock = threading.Lock()

    def observe_many(self, labels: tuple[str, ...], values: np.ndarray) -> None:
        # a value equal to a bound belongs in that bound's bucket (Prometheus' buckets are "less than or equal")
        counts = np.bincount(np.searchsorted(self.bounds, values, side="left"), minlength=self.bounds.size + 1)
        with self._lock:
            previous, total = self._series.get(labels, (np.zeros(self.bounds.size + 1, dtype=np.int64), 0.0))
            self._series[labels] = (previous + counts, total + float(values.sum()))

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            series = list(self._series.items())
        for labels, (counts, total) in series:
            cumulative = np.cumsum(counts)
            bounds = [*(floatToGoString(bound) for bound in self.bounds), "+Inf"]
            family.add_metric(list(labels), list(zip(bounds, cumulative.tolist(), strict=True)), total)
        yield family


EDGE_LATENCY = BatchHistogram(
    "iotsphere_edge_inference_latency_seconds",
    "A model run's time on the gateway, as the gateway reported it with the prediction.",
    ["model", "version"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
REGISTRY.register(EDGE_LATENCY)

HTTP_REQUESTS = Counter(
    "iotsphere_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "iotsphere_http_request_duration_seconds",
    "Time from a request's arrival to its response's start, by route template and method.",
    ["route", "method"],
)

#: labelled by the worker so the series is absent until its first pass (a bare gauge would start at a false 0)
AUDIT_CHAIN_OK = Gauge(
    "iotsphere_audit_chain_ok",
    "1 when this process's last audit checkpoint pass found the log verifying, 0 when it failed verification.",
    ["worker"],
)

#: labelled by the job's leader lock (``cloud.workers``; not ``job``, which Prometheus gives every target);
#: absent in a process that does not run the job
LEADER = Gauge(
    "iotsphere_leader",
    "1 while this process leads the periodic job (holds its leader lock), 0 while another process does.",
    ["lock"],
)

#: what a dead letter's reason starts with (``cloud.ingest.decode``); ``store``: the store refused it alone
REASON_KINDS = frozenset({"topic", "oversized", "malformed", "invalid", "gateway-mismatch", "error", "store"})

# Every known series from the start, at 0: ``increase()`` over a series that first appears at 1 misses that 1.
for _kind in (*REASON_KINDS, "other"):
    INGEST_DEAD_LETTERS.labels(_kind)
for _channel in Up:
    INGEST_MESSAGES.labels(_channel.value)


class _Committed(Protocol):
    #: ``cloud.ingest.decode``'s Accepted (``channel``, ``message``) or Rejected (``reason``): told apart by shape,
    #: since ingest imports this module
    decoded: Any


class _Result(Protocol):
    isolated: int


def reason_kind(reason: str) -> str:
    kind = reason.split(":", 1)[0]
    return kind if kind in REASON_KINDS else "other"


def count_committed(messages: Sequence[_Committed], result: _Result) -> None:
    """Count what one ingest transaction committed. A message delivered again after a lost acknowledgement is
    counted again: these count deliveries handled, the database counts rows."""
    if result.isolated:  # a message the store raised on alone: kept as a dead letter, not stored
        INGEST_DEAD_LETTERS.labels("store").inc(result.isolated)
        return
    channels: Tally[str] = Tally()
    reasons: Tally[str] = Tally()
    for message in messages:
        decoded = message.decoded
        reason = getattr(decoded, "reason", None)
        if reason is not None:
            reasons[reason_kind(reason)] += 1
            continue
        channels[decoded.channel.value] += 1
        if isinstance(decoded.message, PredictionBatch):
            _count_predictions(decoded.message)
    for channel, count in channels.items():
        INGEST_MESSAGES.labels(channel).inc(count)
    for reason, count in reasons.items():
        INGEST_DEAD_LETTERS.labels(reason).inc(count)


def _count_predictions(batch: PredictionBatch) -> None:
    """One counter increment and one histogram update per model version in the batch (a batch holds up to 1000)."""
    latencies: dict[tuple[str, str], list[float]] = {}
    for prediction in batch.predictions:
        latencies.setdefault((prediction.model_name, prediction.model_version), []).append(prediction.latency_ms)
    for labels, milliseconds in latencies.items():
        PREDICTIONS.labels(*labels).inc(len(milliseconds))
        EDGE_LATENCY.observe_many(labels, np.asarray(milliseconds, dtype=np.float64) / 1000)
