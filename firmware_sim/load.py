"""The uplink of many gateways without running their agents: load for ingest workers and the broker.

Each simulated gateway sends what an edge agent with its defaults sends (``edge_agent.agent``), built with the wire
models of ``shared.messages`` on the topics of ``shared.topics``:

- ``up/features``: one batch an hour (``feature_interval``), one row per heater, the feature set of
  ``shared.features``;
- ``up/predictions``: one batch an hour, one prediction per heater and model (the three prediction types, champion
  only: no experiment running);
- ``up/status``: every minute (``status_interval``), retained, QoS 1 like everything else;
- ``up/events``: what updates cause (download, install, activate, commit), four per model release; at one release a
  week per model that is one event every 14 hours.

Feature values are random, not simulated: ingest cost does not depend on them, and simulating the heaters of
thousands of gateways would load this machine more than the ingest it measures. Each gateway sends on each channel
at its own seeded phase, so the traffic is spread evenly; real agents all compute features at the top of the hour,
which is a burst of the same volume (docs/scaling.md).

Time. ``rate`` simulated seconds pass per real second. The run covers ``[start, start + span)`` of simulated time and
publishes every message due in it, so the counts of a run depend only on the profile, the span and the seed, never
on how fast this machine is: a generator that falls behind publishes late, and says so (``behind_s``).
"""

from __future__ import annotations

import heapq
import math
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import paho.mqtt.client as mqtt

from firmware_sim.live import connect
from firmware_sim.parameters import DEVICE_MODEL_SHARES, DEVICE_MODELS
from shared.features import FEATURE_NAMES, FEATURE_SET_VERSION
from shared.messages import (
    Component,
    Envelope,
    EventKind,
    FeatureBatch,
    FeatureRow,
    GatewayEvent,
    GatewayStatus,
    ModelState,
    Prediction,
    PredictionBatch,
    PredictionType,
    new_msg_id,
)
from shared.topics import Up, up_topic, validate_id

#: the edge agent's defaults (``edge_agent.agent.AgentConfig``; tests/load checks they agree)
FEATURE_INTERVAL_S = 3600.0
STATUS_INTERVAL_S = 60.0
#: the edge agent's largest batch (``edge_agent.agent.BATCH_ROWS``)
BATCH_ROWS = 500
#: four events (download, install, activate, commit) per release, one release a week for each model
EVENT_KINDS = (EventKind.DOWNLOAD, EventKind.INSTALL, EventKind.ACTIVATE, EventKind.COMMIT)
RELEASES_PER_MODEL_PER_WEEK = 1.0
#: what each model serves, by output label (``cloud.training``: component_failure, usage_pattern, anomaly)
MODEL_OUTPUTS: dict[PredictionType, tuple[str, ...]] = {
    PredictionType.COMPONENT_FAILURE: ("none", *(c.value for c in Component)),
    PredictionType.USAGE_PATTERN: ("litres_next_24h",),
    PredictionType.ANOMALY: ("anomaly_score",),
}
#: one prediction batch per gateway and hour, as the agent sends for a site this size
MAX_HEATERS_PER_GATEWAY = BATCH_ROWS // len(MODEL_OUTPUTS)
MODEL_VERSION = "1"
AGENT_VERSION = "load-1"


@dataclass(frozen=True)
class LoadProfile:
    """How many gateways, how many heaters each, and how often each channel sends (simulated seconds)."""

    gateways: int
    heaters_per_gateway: int = 20
    feature_interval_s: float = FEATURE_INTERVAL_S
    status_interval_s: float = STATUS_INTERVAL_S
    event_interval_s: float = 7 * 86400 / (RELEASES_PER_MODEL_PER_WEEK * len(MODEL_OUTPUTS) * len(EVENT_KINDS))

    def __post_init__(self) -> None:
        if self.gateways < 1:
            raise ValueError("gateways must be at least 1")
        if not 1 <= self.heaters_per_gateway <= MAX_HEATERS_PER_GATEWAY:
            raise ValueError(f"heaters per gateway must be 1 to {MAX_HEATERS_PER_GATEWAY} (one batch per hour)")

    @property
    def intervals(self) -> dict[Up, float]:
        return {
            Up.FEATURES: self.feature_interval_s,
            Up.PREDICTIONS: self.feature_interval_s,
            Up.STATUS: self.status_interval_s,
            Up.EVENTS: self.event_interval_s,
        }

    def rows_per_message(self, channel: Up) -> int:
        """Rows a message adds to its table: feature rows, predictions, a gateway's row, an event."""
        if channel == Up.FEATURES:
            return self.heaters_per_gateway
        if channel == Up.PREDICTIONS:
            return self.heaters_per_gateway * len(MODEL_OUTPUTS)
        return 1

    def messages_per_second(self, channel: Up | None = None) -> float:
        """Messages per simulated second of the whole fleet, on one channel or all."""
        channels = [channel] if channel else list(self.intervals)
        return sum(self.gateways / self.intervals[c] for c in channels)

    def rows_per_second(self, channel: Up | None = None) -> float:
        channels = [channel] if channel else list(self.intervals)
        return sum(self.messages_per_second(c) * self.rows_per_message(c) for c in channels)


_RATE = re.compile(r"^\s*(?P<value>[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(?P<unit>x|/s)?\s*$")


def parse_rate(text: str, profile: LoadProfile) -> float:
    """``--rate``: ``60`` or ``60x`` (simulated seconds per real second) or ``500/s`` (messages per real second)."""
    match = _RATE.match(text)
    if not match or float(match["value"]) <= 0:
        raise ValueError(f"rate {text!r}: give a positive multiplier of real time (60, 60x) or messages/s (500/s)")
    value = float(match["value"])
    return value / profile.messages_per_second() if match["unit"] == "/s" else value


class Traffic:
    """Builds each gateway's messages with the wire models, as its agent would.

    Each kind of message is validated once, as a template, and every message is a copy of it with its own ids, times
    and values (``model_copy``), as the agent copies a model's prediction template: everything put in is valid by
    construction, and validating again would make the generator, not ingest, the bottleneck.
    """

    def __init__(self, profile: LoadProfile, seed: int = 0, gateway_prefix: str = "load-gw") -> None:
        self.profile = profile
        self._rng = np.random.default_rng(seed)
        width = max(5, len(str(profile.gateways - 1)))
        validate_id(f"{gateway_prefix}{profile.gateways:0{width}d}-h{profile.heaters_per_gateway:03d}", "device id")
        self._gateway_format = f"{gateway_prefix}{{:0{width}d}}"
        self._device_types = [m.device_type for m in DEVICE_MODELS]
        #: one heater model per site keeps this small; the bytes on the wire are the same
        self._site_types = self._rng.choice(len(DEVICE_MODELS), size=profile.gateways, p=DEVICE_MODEL_SHARES)
        self._events = Counter[int]()
        anyone, zero = self.gateway_id(0), datetime(2026, 1, 1, tzinfo=UTC)
        self._row = FeatureRow(device_id=anyone, device_type="t", window_end=zero, values=[0.0] * len(FEATURE_NAMES))
        self._features = FeatureBatch(
            gateway_id=anyone,
            sent_at=zero,
            feature_set_version=FEATURE_SET_VERSION,
            feature_names=FEATURE_NAMES,
            rows=[self._row],
        )
        self._predictions = {
            kind: Prediction(
                prediction_id=new_msg_id(),
                device_id=anyone,
                device_type="t",
                prediction_type=kind,
                model_name=kind.value,
                model_version=MODEL_VERSION,
                outputs=dict.fromkeys(labels, 0.0),
                latency_ms=0.5,
                made_at=zero,
                feature_window_end=zero,
            )
            for kind, labels in MODEL_OUTPUTS.items()
        }
        self._prediction_batch = PredictionBatch(
            gateway_id=anyone, sent_at=zero, predictions=[*self._predictions.values()]
        )
        models = [
            ModelState(model_name=kind.value, active_version=MODEL_VERSION, installed_versions=[MODEL_VERSION])
            for kind in MODEL_OUTPUTS
        ]
        self._status = GatewayStatus(
            gateway_id=anyone,
            sent_at=zero,
            online=True,
            agent_version=AGENT_VERSION,
            models=models,
            heaters=profile.heaters_per_gateway,
        )
        self._event = GatewayEvent(
            gateway_id=anyone, sent_at=zero, kind=EventKind.DOWNLOAD, model_version=MODEL_VERSION, detail="load"
        )

    def gateway_id(self, gateway: int) -> str:
        return self._gateway_format.format(gateway)

    def device_ids(self, gateway: int) -> list[str]:
        return [f"{self.gateway_id(gateway)}-h{h:03d}" for h in range(self.profile.heaters_per_gateway)]

    def device_type(self, gateway: int) -> str:
        return self._device_types[self._site_types[gateway]]

    def message(self, channel: Up, gateway: int, due: datetime) -> Envelope:
        builder = {
            Up.FEATURES: self.features,
            Up.PREDICTIONS: self.predictions,
            Up.STATUS: self.status,
            Up.EVENTS: self.event,
        }[channel]
        return builder(gateway, due)

    def _envelope(self, gateway: int, due: datetime) -> dict:
        return {"gateway_id": self.gateway_id(gateway), "msg_id": new_msg_id(), "sent_at": due}

    def features(self, gateway: int, due: datetime) -> FeatureBatch:
        window_end = _floor(due, self.profile.feature_interval_s)
        values = self._rng.random((self.profile.heaters_per_gateway, len(FEATURE_NAMES))).round(4).tolist()
        device_type = self.device_type(gateway)
        rows = [
            self._row.model_copy(
                update={"device_id": device_id, "device_type": device_type, "window_end": window_end, "values": row}
            )
            for device_id, row in zip(self.device_ids(gateway), values, strict=True)
        ]
        return self._features.model_copy(update={**self._envelope(gateway, due), "rows": rows})

    def predictions(self, gateway: int, due: datetime) -> PredictionBatch:
        window_end = _floor(due, self.profile.feature_interval_s)
        device_type = self.device_type(gateway)
        predictions = []
        for kind, labels in MODEL_OUTPUTS.items():
            template = self._predictions[kind]
            scores = self._rng.random((self.profile.heaters_per_gateway, len(labels)))
            if len(labels) > 1:
                scores /= scores.sum(axis=1, keepdims=True)
            for device_id, row in zip(self.device_ids(gateway), scores.round(4).tolist(), strict=True):
                update = {
                    "prediction_id": new_msg_id(),
                    "device_id": device_id,
                    "device_type": device_type,
                    "outputs": dict(zip(labels, row, strict=True)),
                    "made_at": due,
                    "feature_window_end": window_end,
                }
                predictions.append(template.model_copy(update=update))
        return self._prediction_batch.model_copy(update={**self._envelope(gateway, due), "predictions": predictions})

    def status(self, gateway: int, due: datetime) -> GatewayStatus:
        return self._status.model_copy(update=self._envelope(gateway, due))

    def event(self, gateway: int, due: datetime) -> GatewayEvent:
        number = self._events[gateway]
        self._events[gateway] += 1
        update = {
            "kind": EVENT_KINDS[number % len(EVENT_KINDS)],
            "model_name": list(MODEL_OUTPUTS)[number // len(EVENT_KINDS) % len(MODEL_OUTPUTS)].value,
        }
        return self._event.model_copy(update={**self._envelope(gateway, due), **update})


def _floor(moment: datetime, interval_s: float) -> datetime:
    return datetime.fromtimestamp(math.floor(moment.timestamp() / interval_s) * interval_s, UTC)


def schedule(profile: LoadProfile, span_s: float, seed: int = 0) -> Iterator[tuple[float, Up, int]]:
    """``(offset_s, channel, gateway)`` of every message due in ``[0, span_s)``, in time order.

    Each gateway sends on each channel at ``(k + phase) * interval`` with its own seeded phase in ``[0, 1)``.
    """
    phases = random.Random(seed)
    heap = [
        (phases.random() * interval, channel_order, gateway)
        for channel_order, interval in enumerate(profile.intervals.values())
        for gateway in range(profile.gateways)
    ]
    heapq.heapify(heap)
    channels = list(profile.intervals.items())
    while heap and heap[0][0] < span_s:
        offset, order, gateway = heap[0]
        channel, interval = channels[order]
        heapq.heapreplace(heap, (offset + interval, order, gateway))
        yield offset, channel, gateway


@dataclass
class LoadStats:
    """What a run published, by channel; ``behind_s`` is how late the last message went out."""

    started: float = field(default_factory=time.monotonic)
    messages: Counter = field(default_factory=Counter)
    rows: Counter = field(default_factory=Counter)
    failed: int = 0
    behind_s: float = 0.0
    simulated_s: float = 0.0
    _mark: tuple[float, int, int] | None = field(default=None, repr=False)

    @property
    def sent(self) -> int:
        return sum(self.messages.values())

    @property
    def sent_rows(self) -> int:
        return sum(self.rows.values())

    def line(self) -> str:
        """One progress line, the rates over the time since the previous line."""
        now = time.monotonic()
        at, messages, rows = self._mark or (self.started, 0, 0)
        self._mark = (now, self.sent, self.sent_rows)
        seconds = max(now - at, 1e-9)
        return (
            f"{now - self.started:6.1f} s: {self.sent} msgs ({(self.sent - messages) / seconds:,.0f} msg/s), "
            f"{self.sent_rows} rows ({(self.sent_rows - rows) / seconds:,.0f} rows/s), "
            f"{self.failed} failed, {self.behind_s:.1f} s behind"
        )


class LoadGenerator:
    """Publishes a profile's traffic at ``rate`` × real time; ``stop()`` (any thread) ends a run early, cleanly."""

    def __init__(
        self,
        profile: LoadProfile,
        mqtt_url: str,
        rate: float = 1.0,
        prefix: str = "iotsphere/v1",
        seed: int = 0,
        retain_status: bool = True,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive (simulated seconds per real second)")
        self.profile, self.mqtt_url, self.rate, self.prefix, self.seed = profile, mqtt_url, rate, prefix, seed
        self.retain_status = retain_status
        self.traffic = Traffic(profile, seed)
        self.stats = LoadStats()
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(
        self,
        duration_s: float | None = None,
        report: Callable[[LoadStats], None] | None = None,
        every_s: float = 5.0,
        start: datetime | None = None,
    ) -> LoadStats:
        """Publish until ``duration_s`` real seconds' worth of simulated time is sent (None: until ``stop()``).

        The simulated clock starts at ``start`` (default: so that the run ends now, its data not in the future).
        """
        span_s = math.inf if duration_s is None else duration_s * self.rate
        if start is None:
            start = datetime.now(UTC) - timedelta(seconds=0 if duration_s is None else span_s)
        client = connect(self.mqtt_url, f"iotsphere-load-{uuid.uuid4().hex[:12]}")
        self.stats = stats = LoadStats()
        pending: list[mqtt.MQTTMessageInfo] = []
        next_report = stats.started + every_s if report is not None else math.inf

        def report_if_due() -> None:
            nonlocal next_report
            if time.monotonic() >= next_report:
                report(stats)
                next_report = time.monotonic() + every_s

        try:
            for offset, channel, gateway in schedule(self.profile, span_s, self.seed):
                due = stats.started + offset / self.rate
                while (wait := due - time.monotonic()) > 0 and not self._stop.is_set():
                    self._stop.wait(max(0.0, min(wait, next_report - time.monotonic())))
                    report_if_due()
                if self._stop.is_set():
                    break
                stats.behind_s = -wait
                message = self.traffic.message(channel, gateway, start + timedelta(seconds=offset))
                retain = channel == Up.STATUS and self.retain_status
                topic = up_topic(message.gateway_id, channel, self.prefix)
                info = client.publish(topic, message.to_json(), qos=1, retain=retain)
                if info.rc == mqtt.MQTT_ERR_SUCCESS:
                    pending.append(info)
                    stats.messages[channel.value] += 1
                    stats.rows[channel.value] += self.profile.rows_per_message(channel)
                else:
                    stats.failed += 1
                stats.simulated_s = offset
                report_if_due()
                if len(pending) >= 10_000:
                    pending = [info for info in pending if not info.is_published()]
            for info in pending:  # every message acknowledged by the broker, or counted as failed
                info.wait_for_publish(timeout=30)
                if not info.is_published():
                    stats.failed += 1
        finally:
            client.disconnect()
            client.loop_stop()
        return stats
