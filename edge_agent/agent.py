"""The gateway process: telemetry in, features and predictions out, director documents applied.

Threads, each with one job: paho's network thread only queues what arrives; the worker parses
telemetry, keeps the windows and, whenever telemetry time crosses a feature boundary, computes
features for every heater (``shared.features``) and predictions with the active models; the
updater thread applies director documents (slow: HTTP, ONNX checks) without stalling telemetry;
the outbox sender moves everything bound up to the broker. Everything bound up goes through the
outbox except the retained status, which is a snapshot and is simply re-sent: on every connect, whenever
what it reports may have changed, and every ``status_interval``. The last will says only "offline"
(``_last_will``), so a gateway that dies never replaces what its statuses said with what it ran when it
connected.

``run_in_process`` feeds readings straight into the same path, for the demo and tests.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import paho.mqtt.client as mqtt

from edge_agent import fault_points
from edge_agent.config import AgentConfig, check_config
from edge_agent.device_index import DEVICES_FILE, DeviceIndex, GatewayIdentity
from edge_agent.director_state import DirectorState
from edge_agent.events import AgentEvent, log_event
from edge_agent.inference import Heater
from edge_agent.local_api import LocalApi, local_token
from edge_agent.model_loader import FeatureContract
from edge_agent.model_store import ModelStore
from edge_agent.mqtt_link import LastWill, MqttLink
from edge_agent.outbox import OUTBOX_FILE, Outbox, OutboxSender
from edge_agent.probation import Probation
from edge_agent.quarantine import Quarantine
from edge_agent.serving import Serving
from edge_agent.technician import TechnicianLog
from edge_agent.tuf_client import TufClient
from edge_agent.updater import ReleaseUpdater, UpdateResult
from edge_agent.version import AGENT_VERSION
from edge_agent.windows import HeaterWindows, ReadingsSummary
from shared.features import FEATURE_NAMES, FEATURE_SET_VERSION, MIN_COVERAGE, WINDOW_SAMPLES
from shared.messages import (
    MAX_PAYLOAD_BYTES,
    Arm,
    Envelope,
    FeatureBatch,
    FeatureRow,
    GatewayStatus,
    ModelState,
    PredictionBatch,
)
from shared.private_files import private_data_dir
from shared.telemetry import Telemetry, parse_telemetry
from shared.topics import (
    Down,
    Up,
    down_topic,
    parse_telemetry_topic,
    telemetry_wildcard,
    up_topic,
)

log = logging.getLogger(__name__)

#: most rows per up/features or up/predictions message (the wire contract allows 1000)
BATCH_ROWS = 500
#: telemetry messages queued for the worker (ten minutes of 100 heaters); when it is full, paho's network thread
#: waits for the worker, which takes over 10,000 a second. 10,000 raised a flood's peak by 7 MB (docs/edge.md)
INBOX_MESSAGES = 1_000

Item = TypeVar("Item")


def split_to_fit(items: list[Item], build: Callable[[list[Item]], Envelope]) -> list[Envelope]:
    """Messages of at most ``BATCH_ROWS`` items, halved until each is within the cloud's payload cap."""
    if len(items) > BATCH_ROWS:
        return [
            m
            for start in range(0, len(items), BATCH_ROWS)
            for m in split_to_fit(items[start : start + BATCH_ROWS], build)
        ]
    message = build(items)
    if len(items) == 1 or len(message.to_json()) <= MAX_PAYLOAD_BYTES:
        return [message]
    half = len(items) // 2
    return split_to_fit(items[:half], build) + split_to_fit(items[half:], build)


def _floor(moment: datetime, interval: timedelta) -> datetime:
    step = interval.total_seconds()
    return datetime.fromtimestamp(math.floor(moment.timestamp() / step) * step, UTC)


class EdgeAgent:
    def __init__(self, config: AgentConfig):
        check_config(config)
        fault_points.arm(config.fault_point)
        self.config = config
        self.gateway_id = config.gateway_id
        data = private_data_dir(config.data_dir)  # outbox, models, keys: this user's only
        self.outbox = Outbox(
            data / OUTBOX_FILE,
            bounds={
                Up.FEATURES.value: config.outbox_features_bytes,
                Up.PREDICTIONS.value: config.outbox_predictions_bytes,
            },
        )
        self.devices = DeviceIndex(data / DEVICES_FILE)
        self.devices.set_identity(GatewayIdentity(config.gateway_id, config.prefix, config.prediction_horizon))
        self.technician = TechnicianLog(self.outbox, self.devices, on_append=self._wake_sender)
        self.local_api: LocalApi | None = None
        if config.local_api_port is not None:
            self.local_api = LocalApi(
                self.technician,
                local_token(data, config.local_api_token),
                host=config.local_api_host,
                port=config.local_api_port,
                site=self,
                data_dir=data,
            )
        self.quarantine = Quarantine(data / "agent.sqlite3", keep=config.bad_messages_kept)
        self.store = ModelStore(
            data / "models", FeatureContract(FEATURE_SET_VERSION, tuple(FEATURE_NAMES)), on_event=self.emit
        )
        self.probation = Probation(self.store, config.probation, on_event=self.emit)
        self.serving = Serving(self.probation, on_event=self.emit)
        self.updater: ReleaseUpdater | None = None
        if config.cloud_url:
            trusted_root = config.trusted_root.read_bytes() if config.trusted_root else None
            tuf = TufClient(config.cloud_url, data / "tuf", config.api_key, trusted_root)
            state = DirectorState(data / "director")
            self.updater = ReleaseUpdater(
                self.gateway_id,
                state,
                self.store,
                tuf,
                self.store.features,
                on_event=self.emit,
                key_refresh_interval=config.key_refresh_interval,
                key_retry_interval=config.update_retry,
            )
        grace_minutes = math.ceil(config.tick_grace.total_seconds() / 60)
        self.windows = HeaterWindows(slack_minutes=grace_minutes + 60)
        self._last_boundary: datetime | None = None
        self._processing = threading.Lock()
        #: telemetry (topic, payload); () only wakes the worker (``_report_changed``); None stops it
        self._inbox: queue.Queue[tuple[str, bytes] | tuple[()] | None] = queue.Queue(maxsize=INBOX_MESSAGES)
        self._updates: queue.Queue[bytes | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._connected = threading.Event()
        #: set when what the status reports may have changed; the worker then publishes it
        self._state_changed = threading.Event()
        self.link: MqttLink | None = None
        self.sender: OutboxSender | None = None
        self.feature_ticks = 0

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the active models, then connect and start the threads."""
        self.store.load_active()
        if self.config.mqtt_url:
            self.link = MqttLink(
                self.config.mqtt_url,
                f"iotsphere-edge-{self.gateway_id}",
                on_connected=self._on_connected,
                on_disconnected=self._on_disconnected,
                will=self._last_will,
                reconnect_delay=self.config.reconnect_delay,
                ca_file=self.config.mqtt_ca,
            )
            self.link.client.on_message = self._on_message
            self.sender = OutboxSender(self.outbox, self.link.client)
            self.sender.start()
        self._spawn(self._work, "edge-worker")
        if self.updater is not None:
            self._spawn(self._apply_updates, "edge-updater")
        if self.link is not None:
            self.link.start()
        if self.local_api is not None:
            self.local_api.start()
        log.info(
            "edge agent %s started: %d active model(s), outbox depth %d",
            self.gateway_id,
            len(self.store.active()),
            self.outbox.depth(),
        )

    def stop(self, drain_seconds: float = 5.0) -> int:
        """Finish queued work, give the outbox a moment to drain, report offline, stop every thread.

        A clean disconnect sends no last will, hence the explicit offline status. What is still in
        the outbox stays on disk and goes out after the next start; return how much that is.
        """
        if self.local_api is not None:
            self.local_api.stop()
        self._inbox.put(None)
        self._updates.put(None)
        for thread in self._threads:
            thread.join(30)
        if self.link is not None:
            deadline = time.monotonic() + drain_seconds
            while self._connected.is_set() and self.outbox.depth() and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._connected.is_set():
                self.link.client.publish(*self._status_publish(online=False)).wait_for_publish(5)
            self.sender.stop()
            self.link.stop()
        remaining = self.outbox.depth()
        self.outbox.close()
        self.devices.close()
        self.quarantine.close()
        return remaining

    @property
    def online(self) -> bool:
        """Connected to the broker right now."""
        return self._connected.is_set()

    def model_states(self) -> list[ModelState]:
        """Each model's installed and active versions, for the technician page."""
        return self.store.states()

    def readings_summary(self, device_id: str) -> ReadingsSummary | None:
        """A heater's last hour of readings from the windows in memory, for the technician page."""
        with self._processing:
            return self.windows.summary(device_id)

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- MQTT callbacks (paho's network thread: queue and return) -------------------------------------

    def _on_connected(self, client: mqtt.Client) -> None:
        self._connected.set()
        client.subscribe(
            [
                (telemetry_wildcard(self.gateway_id), 1),
                (down_topic(self.gateway_id, Down.DESIRED, self.config.prefix), 1),
            ]
        )
        client.publish(*self._status_publish(online=True))
        self.sender.connected()

    def _on_disconnected(self) -> None:
        self._connected.clear()
        self.sender.disconnected()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        if message.topic == down_topic(self.gateway_id, Down.DESIRED, self.config.prefix):
            if self.updater is not None and message.payload:
                self._updates.put(bytes(message.payload))
            return
        self._inbox.put((message.topic, bytes(message.payload)))

    # -- telemetry -----------------------------------------------------------------------------------

    def _work(self) -> None:
        next_status = time.monotonic() + self.config.status_interval
        while True:
            try:
                item = self._inbox.get(timeout=max(0.0, next_status - time.monotonic()))
            except queue.Empty:
                item = ()
            if item is None:
                return
            if item:
                try:
                    self.on_telemetry(*item)
                except Exception:  # one message must never end the worker: count it and go on
                    log.exception("processing telemetry from %s failed", item[0])
                    self.quarantine.counts["processing_errors"] += 1
            if self._state_changed.is_set() or time.monotonic() >= next_status:
                self._state_changed.clear()
                next_status = time.monotonic() + self.config.status_interval
                self.publish_status()

    def on_telemetry(self, topic: str, payload: bytes) -> None:
        """One raw telemetry message; a bad one is counted, logged and kept, never raised."""
        try:
            gateway_id, device_id = parse_telemetry_topic(topic)
            if gateway_id != self.gateway_id:
                raise ValueError(f"telemetry for gateway {gateway_id!r} reached {self.gateway_id!r}")
            reading = parse_telemetry(payload)
            if reading.device_id != device_id:
                raise ValueError(f"reading from {reading.device_id!r} on the topic of {device_id!r}")
        except ValueError as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.quarantine.record(topic, payload, reason)
            log.warning("bad telemetry on %s: %s", topic, reason)
            return
        self.process_reading(reading)

    def run_in_process(self, readings: Iterable[Telemetry]) -> int:
        """Feed readings without MQTT (already validated ``Telemetry``); return how many feature ticks they caused."""
        before = self.feature_ticks
        for reading in readings:
            self.process_reading(reading)
        return self.feature_ticks - before

    def process_reading(self, reading: Telemetry) -> None:
        with self._processing:
            boundary = _floor(reading.ts - self.config.tick_grace, self.config.feature_interval)
            if self._last_boundary is None:
                self._last_boundary = boundary
            elif boundary > self._last_boundary:
                self._last_boundary = boundary
                self._emit_features(boundary)
            self.windows.add(reading)
        self.devices.remember_device(reading.device_id, reading.device_type)

    def _emit_features(self, end: datetime) -> None:
        """Features for every heater heard from in the window ending at ``end``, then predictions."""
        self.windows.forget_before(end - timedelta(minutes=WINDOW_SAMPLES))
        heaters = [Heater(device_id, device_type) for device_id, device_type in self.windows.heaters(end)]
        if not heaters:
            return
        features = self.windows.features([h.device_id for h in heaters], end)
        rows = [
            FeatureRow(
                device_id=heater.device_id,
                device_type=heater.device_type,
                window_end=end,
                values=[float(v) if math.isfinite(v) else None for v in features[i]],
            )
            for i, heater in enumerate(heaters)
        ]

        def feature_batch(chunk: list[FeatureRow]) -> FeatureBatch:
            return FeatureBatch(
                gateway_id=self.gateway_id,
                feature_set_version=FEATURE_SET_VERSION,
                feature_names=FEATURE_NAMES,
                rows=chunk,
            )

        for batch in split_to_fit(rows, feature_batch):
            self.publish(Up.FEATURES, batch)
        self.feature_ticks += 1
        models = self.store.active()
        if not models:
            return
        # a window too sparse to describe the heater gets no prediction (its features say why)
        covered = [i for i in range(len(heaters)) if features[i, 0] >= MIN_COVERAGE]
        predictions = self.serving.predict(
            models, self.store.challengers(), features[covered], [heaters[i] for i in covered], end, end
        )
        # what technicians link outcomes to: the predictions acted on, never a shadow's
        self.devices.remember_predictions(p for p in predictions if p.arm is not Arm.SHADOW)
        if predictions:
            batches = split_to_fit(
                predictions, lambda chunk: PredictionBatch(gateway_id=self.gateway_id, predictions=chunk)
            )
            for batch in batches:
                self.publish(Up.PREDICTIONS, batch)

    # -- updates -------------------------------------------------------------------------------------

    def _apply_updates(self) -> None:
        """Apply documents in arrival order; one deferred (cloud unreachable) is retried until a newer one comes."""
        retry: bytes | None = None
        while True:
            try:
                payload = self._updates.get(timeout=self.config.update_retry.total_seconds() if retry else None)
            except queue.Empty:
                payload = retry
            if payload is None:
                return
            retry = None
            try:
                if self.updater.handle(payload) is UpdateResult.DEFERRED:
                    retry = payload
            except Exception:  # the updater reports rule failures itself; anything else must not end updates
                log.exception("applying a director document failed unexpectedly")
            self._report_changed()  # the accepted sequence may have moved without an event

    # -- up ------------------------------------------------------------------------------------------

    def publish(self, channel: Up, message: Envelope) -> None:
        """Durably queue one message for the cloud; the sender delivers it when it can."""
        self.outbox.append(
            up_topic(self.gateway_id, channel, self.config.prefix), message.to_json(), message.msg_id, channel.value
        )
        self._wake_sender()

    def _wake_sender(self) -> None:
        if self.sender is not None:
            self.sender.wake()

    def emit(self, event: AgentEvent) -> None:
        """Log and send one event; one about a director document by sequence only gets its digest here."""
        if self.updater is not None:
            event = self.updater.document_digest_of(event)
        log_event(event)
        self.publish(Up.EVENTS, event.to_message(self.gateway_id))
        self._report_changed()

    def _report_changed(self) -> None:
        """What the status reports may have changed (a release installed, committed, rolled back): the worker
        publishes it once it is done with the message in hand, so the retained status is never behind for long
        and a rollback is reported with the version it went back to."""
        self._state_changed.set()
        with contextlib.suppress(queue.Full):  # a full inbox: the worker is busy and sees the flag soon
            self._inbox.put_nowait(())

    def status(self, online: bool = True) -> GatewayStatus:
        # bad telemetry by kind, and outbox drops by channel ("features", "predictions") since the first start
        dropped = {**self.quarantine.counts, **self.outbox.dropped()}
        return GatewayStatus(
            gateway_id=self.gateway_id,
            online=online,
            agent_version=AGENT_VERSION,
            models=[self._with_counts(state) for state in self.store.states()],
            director_sequence=self.updater.accepted_sequence if self.updater else None,
            outbox_depth=self.outbox.depth(),
            dropped=dropped,
            health="ok" if online else "offline",
            heaters=len(self.windows),
        )

    def _with_counts(self, state: ModelState) -> ModelState:
        predictions, failures = self.serving.counts(state.model_name)
        return state.model_copy(update={"predictions": predictions, "failures": failures})

    def _last_will(self) -> LastWill:
        """Only "offline", never the models or the director sequence: it is built before the connection it
        outlives, so anything more would be what the gateway ran then (a gateway that installed its first release
        and died would report none). The cloud keeps what the last online status said (``cloud.ingest.store``)."""
        offline = GatewayStatus(gateway_id=self.gateway_id, online=False, agent_version=AGENT_VERSION, health="offline")
        return LastWill(up_topic(self.gateway_id, Up.STATUS, self.config.prefix), offline.to_json())

    def _status_publish(self, online: bool) -> tuple[str, bytes, int, bool]:
        return up_topic(self.gateway_id, Up.STATUS, self.config.prefix), self.status(online).to_json(), 1, True

    def publish_status(self) -> None:
        """Refresh the retained status (it stays on the broker until the next one or the last will); skipped while
        offline (the last will already says so)."""
        if self.link is not None and self._connected.is_set():
            self.link.client.publish(*self._status_publish(online=True))
