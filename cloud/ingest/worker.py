"""The ingest worker: gateway uplink over MQTT → SQLite, acknowledging each message only once it is stored.

Delivery guarantee. The subscription is QoS 1 with paho's manual acknowledgement: a batch of messages is
committed to SQLite in one transaction and only then are their PUBACKs sent. If the process dies, the
connection drops or the commit fails, the unacknowledged messages stay in the broker's session and are
delivered again (MQTT redelivers on reconnect, so a failed commit makes the worker reconnect); storage is
idempotent on ``msg_id`` and on every row key, so redelivery never duplicates anything.

Session. MQTT 3.1.1 by default, with ``clean_session=False`` and a fixed client id: the broker keeps the
subscription and queues messages while the worker is away, and a restart with the same id picks them up.
Measured (bench/bench_ingest.py) it ingests about a quarter faster through paho than MQTT 5, whose per-message
property decoding is pure Python; it works with every broker (amqtt, the embedded one, has no MQTT 5); and
Mosquitto, EMQX, HiveMQ and AWS IoT all accept ``$share`` from 3.1.1 clients. What it lacks: a session expiry
(bound a retired worker's session with Mosquitto's ``persistent_client_expiration``) and a client-chosen
in-flight window (the broker decides how many unacknowledged messages it sends, Mosquitto by its
``max_inflight_messages``, and queues the rest up to ``max_queued_messages``: raise that limit from its
default of 1000, past which Mosquitto drops QoS 1 messages for a session that lags).
``mqtt5=True`` connects with MQTT 5 instead: ``clean_start=False``, a session expiry, and a Receive Maximum
of twice the batch size.

Durability. SQLite in WAL mode with ``synchronous=FULL`` on the worker's connection: each commit is fsynced
before its PUBACKs go out, so an acknowledged message survives a power cut or kernel crash, not only a crash of
this process (all that WAL with ``synchronous=NORMAL``, the database's default here, promises; it may lose the
last commits, whose messages the broker has already dropped). One fsync per batch of up to ``batch_size``
messages costs nothing measurable at ingest rates (bench/bench_ingest.py).

Batching. One thread runs paho's network loop and the writes. A batch is committed when it holds
``batch_size`` messages, when the broker has nothing more to send at the moment (so a trickle is stored at
once and a flood forms full batches), and at the latest ``flush_interval`` seconds after its first message.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from cloud.config import CloudConfig
from cloud.ingest.decode import MAX_REASON_CHARS, Accepted, Rejected, decode
from cloud.ingest.store import DeadLetter, write_batch
from cloud.storage import open_database
from shared.mqtt_url import apply_endpoint, parse_mqtt_url
from shared.topics import shared_subscription, up_wildcard

log = logging.getLogger(__name__)

DEFAULT_SHARED_GROUP = "iotsphere-ingest"
#: How long the broker keeps a departed worker's session (subscription and queued messages).
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
KEEPALIVE_SECONDS = 60
#: Longest the network loop blocks when idle, which bounds how soon ``stop()`` is noticed.
POLL_SECONDS = 0.05
#: Waits between attempts after a failed connection or commit: doubling from the first to the last.
BACKOFF_SECONDS = (0.5, 30.0)


@dataclass
class IngestStats:
    """Counts since start; a message delivered again after a failure is received (and counted) again."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    batches: int = 0
    storage_errors: int = 0

    def line(self) -> str:
        return " ".join(f"{name}={value}" for name, value in asdict(self).items())


@dataclass(slots=True)
class _Received:
    mid: int
    qos: int
    topic: str
    payload: bytes
    decoded: Accepted | Rejected


class IngestWorker:
    """Stores every gateway's uplink: ``start()``/``stop()`` to run beside other work, ``run_forever()`` alone."""

    def __init__(
        self,
        config: CloudConfig,
        *,
        client_id: str | None = None,
        shared_group: str | None = DEFAULT_SHARED_GROUP,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        mqtt5: bool = False,
    ) -> None:
        """``client_id`` (default ``config.ingest_client_id``) names the broker session: one per worker, stable."""
        if batch_size < 1 or flush_interval < 0:
            raise ValueError("batch_size must be at least 1 and flush_interval not negative")
        self.config = config
        self.client_id = client_id or config.ingest_client_id
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        wildcard = up_wildcard(config.topic_prefix)
        self.topic_filter = shared_subscription(wildcard, shared_group) if shared_group else wildcard
        self._endpoint = parse_mqtt_url(config.mqtt_url)
        self._mqtt5 = mqtt5
        self._client = self._new_client()
        self._stats = IngestStats()
        self._pending: list[_Received] = []
        self._batch_started = 0.0
        self._stopping = threading.Event()
        self._settled = threading.Event()  # subscribed, or refused for good
        self._subscribed = False
        self._last_error = ""  # why the last connection or commit failed
        self._refusal = ""  # why the broker refused the connection or subscription, for start() to report
        self._backoff = BACKOFF_SECONDS[0]
        self._connect_after = 0.0
        self._thread: threading.Thread | None = None
        self._db = None

    @property
    def stats(self) -> IngestStats:
        return replace(self._stats)

    def start(self, timeout: float = 10.0) -> None:
        """Open the database, run the loop in a background thread, and return once subscribed."""
        if self._thread is not None:
            raise RuntimeError("an IngestWorker starts once; make a new one to start again")
        self._db = open_database(self.config.database_path)
        self._db.execute("PRAGMA synchronous=FULL")  # see "Durability" above
        self._thread = threading.Thread(target=self._run, name=f"ingest-{self.client_id}", daemon=True)
        self._thread.start()
        if not self._settled.wait(timeout) or not self._subscribed:
            self.stop()
            where = f"{self._endpoint.host}:{self._endpoint.port}"
            why = self._refusal or self._last_error or f"no answer within {timeout} s"
            raise ConnectionError(f"could not subscribe to {self.topic_filter!r} at {where}: {why}")
        log.info("ingest worker %s subscribed to %s", self.client_id, self.topic_filter)

    def stop(self, timeout: float = 30.0) -> None:
        """Store and acknowledge what was received, then disconnect; the broker keeps the session."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._db is not None and not (self._thread and self._thread.is_alive()):
            self._db.conn.close()
            self._db = None

    def run_forever(self, report: Callable[[IngestStats], None] | None = None, every: float = 10.0) -> None:
        """Run (starting if need be) until Ctrl-C or ``stop()``, handing the stats to ``report`` every ``every`` s."""
        if self._thread is None:
            self.start()
        try:
            while not self._stopping.wait(every):
                if not self._thread.is_alive():
                    raise RuntimeError("the ingest loop stopped unexpectedly; see the log")
                if report is not None:
                    report(self.stats)
        except KeyboardInterrupt:
            log.info("interrupted: stopping the ingest worker")
        finally:
            self.stop()

    # -- the loop (runs in the worker thread) --------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self._client.socket() is None:
                self._connect()
            else:
                self._pump()
        if self._client.socket() is not None:
            if self._pending:
                self._flush()
            self._client.disconnect()

    def _connect(self) -> None:
        wait = self._connect_after - time.monotonic()
        if wait > 0:
            self._stopping.wait(wait)
            return
        try:
            if self._mqtt5:
                properties = Properties(PacketTypes.CONNECT)
                properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
                properties.ReceiveMaximum = min(65535, 2 * self.batch_size)
                self._client.connect(
                    self._endpoint.host,
                    self._endpoint.port,
                    KEEPALIVE_SECONDS,
                    clean_start=False,
                    properties=properties,
                )
            else:
                self._client.connect(self._endpoint.host, self._endpoint.port, KEEPALIVE_SECONDS)
        except OSError as exc:
            self._retry_later(f"cannot reach the broker: {exc}")

    def _pump(self) -> None:
        """Read what the broker sends, then commit it; a lost connection drops only unacknowledged messages.

        paho's external-loop calls rather than ``loop()``: ``loop()`` adds a wake-up socket pair that costs a
        system call for every acknowledgement, which only a multi-threaded client needs.
        """
        client = self._client
        sock = client.socket()
        writers = [sock] if client.want_write() else []
        if getattr(sock, "pending", lambda: 0)():  # TLS: decrypted bytes wait inside the socket object
            readable, writable = True, bool(writers)
        else:
            ready = select.select([sock], writers, [], POLL_SECONDS)
            readable, writable = bool(ready[0]), bool(ready[1])
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        if readable:
            rc = client.loop_read()
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                rc = self._read_batch()
        if writable and rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            rc = client.loop_write()
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            rc = client.loop_misc()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._retry_later(f"connection lost: {mqtt.error_string(rc)}")
        elif self._pending:
            self._flush()

    def _read_batch(self) -> MQTTErrorCode:
        """Keep reading while the broker has more, up to a full batch or ``flush_interval`` after its start."""
        deadline = self._batch_started + self.flush_interval
        while self._pending and len(self._pending) < self.batch_size and time.monotonic() < deadline:
            before = self._stats.received
            rc = self._client.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self._stats.received == before:
                return rc
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        accepted = [r.decoded for r in batch if isinstance(r.decoded, Accepted)]
        rejected = [DeadLetter(r.topic, r.payload, r.decoded.reason) for r in batch if isinstance(r.decoded, Rejected)]
        try:
            result = write_batch(self._db.conn, accepted, rejected, datetime.now(UTC))
        except Exception as exc:  # any storage failure: acknowledge nothing, let the broker deliver again
            self._stats.storage_errors += 1
            self._client.disconnect()
            self._retry_later(f"storing {len(batch)} messages failed, none acknowledged: {exc!r}")
            return
        for received in batch:
            if received.qos:
                self._client.ack(received.mid, received.qos)
        self._stats.batches += 1
        self._stats.stored += result.stored
        self._stats.duplicates += result.duplicates
        self._stats.dead_lettered += result.dead_lettered
        self._backoff = BACKOFF_SECONDS[0]
        if rejected:
            log.warning(
                "dead-lettered %d message(s), first on %s: %s", len(rejected), rejected[0].topic, rejected[0].reason
            )

    def _retry_later(self, reason: str) -> None:
        log.warning("%s; retrying in %.1f s", reason, self._backoff)
        self._last_error = reason
        self._connect_after = time.monotonic() + self._backoff
        self._backoff = min(2 * self._backoff, BACKOFF_SECONDS[1])

    # -- paho callbacks (called from inside the loop, in the worker thread) --------------------------------

    def _new_client(self) -> mqtt.Client:
        if self._mqtt5:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5, manual_ack=True
            )
        else:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=mqtt.MQTTv311,
                clean_session=False,
                manual_ack=True,
            )
        apply_endpoint(client, self._endpoint)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        return client

    def _on_connect(self, client: mqtt.Client, _userdata, flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            self._refusal = f"the broker refused the connection: {reason_code}"
            self._settled.set()
            return
        log.info("connected to the broker as %s (session present: %s)", self.client_id, flags.session_present)
        if self._mqtt5:  # a re-subscription must not replay retained messages the session already had
            options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            client.subscribe(self.topic_filter, options=options)
        else:
            client.subscribe(self.topic_filter, qos=1)

    def _on_subscribe(self, _client, _userdata, _mid, reason_codes, _properties) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            self._refusal = f"the broker refused the subscription: {', '.join(refused)}"
        self._subscribed = not refused
        self._settled.set()

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        self._stats.received += 1
        if not self._pending:
            self._batch_started = time.monotonic()
        topic = "<undecodable topic>"
        try:
            topic = message.topic
            decoded = decode(topic, message.payload, self.config.topic_prefix)
        except Exception as exc:  # one bad message must never stop the loop: keep it as a dead letter
            log.exception("cannot decode a message on %s", topic)
            decoded = Rejected(f"error: {exc!r}"[:MAX_REASON_CHARS])
        self._pending.append(_Received(message.mid, message.qos, topic, message.payload, decoded))

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        if self._pending:
            log.info(
                "disconnected (%s): %d unacknowledged messages will be delivered again", reason_code, len(self._pending)
            )
        self._pending = []
