"""The ingest worker: gateway uplink over MQTT → SQLite, acknowledging each message only once it is stored.

Delivery guarantee. The subscription is QoS 1 with paho's manual acknowledgement: a batch of messages is
committed to SQLite in one transaction and only then are their PUBACKs sent. If the process dies, the
connection drops or the store is down, the unacknowledged messages stay in the broker's session and are
delivered again (MQTT redelivers on reconnect, so a failed commit makes the worker reconnect); storage is
idempotent on ``msg_id`` and on every row key, so redelivery never duplicates anything. A commit that fails
because of one message is split until that message fails alone, and it becomes a dead letter while the rest is
stored and acknowledged (``cloud.ingest.isolation``): no message can hold back the others.

Session. MQTT 3.1.1 by default, with ``clean_session=False`` and a fixed client id: the broker keeps the
subscription and queues messages while the worker is away, and a restart with the same id picks them up.
Measured (bench/bench_ingest.py) it ingests about a quarter faster through paho than MQTT 5, whose per-message
property decoding is pure Python; it works with every broker (amqtt, the embedded one, has no MQTT 5); and
Mosquitto, EMQX, HiveMQ and AWS IoT all accept ``$share`` from 3.1.1 clients. What it lacks: a session expiry
(which would not help: an expiring session drops what it queued, see below) and a client-chosen in-flight
window (the broker decides how many unacknowledged messages it sends, Mosquitto by its ``max_inflight_messages``,
and queues the rest up to ``max_queued_messages``: raise that limit from its default of 1000, past which
Mosquitto drops QoS 1 messages for a session that lags).
``mqtt5=True`` connects with MQTT 5 instead: ``clean_start=False``, a session expiry, and a Receive Maximum
of twice the batch size.

Workers that stop. A broker keeps giving a stopped worker's session its share of the shared subscription, and
the alternatives lose messages (measured with Mosquitto in docs/ingest_sessions.md: a clean session drops what
it had in flight and queued, an expiring MQTT 5 session drops its queue). So no session is left alone: each
worker holds a lease on its session (``cloud.ingest.session_leases``), renewed every ``heartbeat_interval``.
When a lease has not been renewed for ``stale_after`` seconds, a peer on the same subscription adopts the
session: it takes the lease, connects with that client id and ``clean_session=False``, unsubscribes from the
shared subscription (from then on the broker gives the group's messages to the other members), stores what the
session had queued and in flight through the same write-and-acknowledge path, and once a drain marker it
published to itself comes back (the broker delivers a session's messages in order) ends the session for good
and drops the lease. Bound: a stopped or killed worker's messages wait at most ``stale_after`` +
``heartbeat_interval`` (35 s by default) plus the time to store what its session queued; nothing acknowledged
to a gateway is lost. Whoever connects to a session holds its lease first: a worker that comes back waits for
an adoption in progress, an adopter that loses its connection gives up and hands the lease back. ``stop()``
keeps the session (a sole worker restarting loses nothing); ``retire()`` unsubscribes, drains and ends it at
once.

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
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy.exc import DBAPIError

from cloud import security_events
from cloud.config import CloudConfig
from cloud.ingest.decode import MAX_REASON_CHARS, Accepted, Rejected, decode
from cloud.ingest.isolation import store_isolating
from cloud.ingest.session_leases import LeaseHeld, SessionLeases
from cloud.ingest.store import BatchResult
from cloud.observability import health, metrics
from cloud.storage import open_database, sync_every_commit
from shared.mqtt_url import MqttEndpoint, apply_endpoint, connect_error, parse_mqtt_url
from shared.topics import parse_gateway_topic, shared_subscription, up_wildcard, validate_id

log = logging.getLogger(__name__)

DEFAULT_SHARED_GROUP = "iotsphere-ingest"
#: How long the broker keeps a departed worker's session (subscription and queued messages).
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
KEEPALIVE_SECONDS = 60
#: Longest the network loop blocks when idle, which bounds how soon ``stop()`` is noticed.
POLL_SECONDS = 0.05
#: Waits between attempts after a failed connection or commit: doubling from the first to the last.
BACKOFF_SECONDS = (0.5, 30.0)
#: How often a worker renews the lease on its session and looks for lapsed ones to adopt.
HEARTBEAT_SECONDS = 5.0
#: A loop silent this long counts as hung (``cloud.observability.health``): far beyond any pass or back-off.
LOOP_MAX_SILENCE_SECONDS = 60.0
#: A lease not renewed for this long has lapsed: its worker is taken for gone and a peer adopts its session.
STALE_AFTER_SECONDS = 30.0


@dataclass
class IngestStats:
    """Counts since start; a message delivered again after a failure is received (and counted) again."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    batches: int = 0
    storage_errors: int = 0
    #: dead letters of messages the store raised on when stored alone (counted in ``dead_lettered`` too)
    isolated: int = 0

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
        heartbeat_interval: float = HEARTBEAT_SECONDS,
        stale_after: float = STALE_AFTER_SECONDS,
    ) -> None:
        """``client_id`` (default ``config.ingest_client_id``) names the broker session: one per worker, stable.

        A worker's messages wait at most ``stale_after`` + ``heartbeat_interval`` + the drain after it stops
        for good (see "Workers that stop").
        """
        if batch_size < 1 or flush_interval < 0:
            raise ValueError("batch_size must be at least 1 and flush_interval not negative")
        if not 0 < heartbeat_interval < stale_after:
            raise ValueError("heartbeat_interval must be positive and shorter than stale_after")
        self.config = config
        self.client_id = validate_id(client_id or config.ingest_client_id, "ingest client id")
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = stale_after
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        wildcard = up_wildcard(config.topic_prefix)
        self.topic_filter = shared_subscription(wildcard, shared_group) if shared_group else wildcard
        self._endpoint = parse_mqtt_url(config.mqtt_url)
        self._mqtt5 = mqtt5
        self._shared_group = shared_group
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
        # the session's lease (see "Workers that stop"); an adopter holds it under its own client id
        self._leases: SessionLeases | None = None
        self._holder = self.client_id
        self._holding = False
        self._renew_at = 0.0
        self._adoption: IngestWorker | None = None  # the peer session this worker is adopting, if any
        # retiring: unsubscribe, drain up to a marker sent to ourselves, end the session
        self._retiring = threading.Event()
        self._drain_topic = f"{config.topic_prefix}/ingest/drain/{self.client_id}"
        self._drain_marker = b""  # empty until the drain has begun on the current connection
        self._drain_subscribe_mid: int | None = None
        self._unsubscribe_mid: int | None = None
        self._drained = False
        self._progress_at = 0.0  # when the drain last received anything
        self._connected = False  # this connection was accepted
        self._connected_once = False
        self._done = False  # the loop's work is over: the session ended, or retiring gave up
        self._ended = False
        self._failure = ""
        self._heartbeat = health.Heartbeat(f"ingest-{self.client_id}", LOOP_MAX_SILENCE_SECONDS)
        self._broker_check = health.broker_check(self.client_id, lambda: self._connected)

    @property
    def stats(self) -> IngestStats:
        return replace(self._stats)

    def start(self, timeout: float = 10.0) -> None:
        """Take the session's lease, run the loop in a background thread, and return once subscribed.

        Waits (within ``timeout``) while a peer is adopting this session; raises LeaseHeld if it still is.
        """
        self._launch(time.monotonic() + timeout)
        self._heartbeat.start()
        health.register(f"broker:{self.client_id}", self._broker_check, live=False)
        if not self._settled.wait(timeout) or not self._subscribed:
            self.stop()
            where = f"{self._endpoint.host}:{self._endpoint.port}"
            why = self._refusal or self._last_error or f"no answer within {timeout} s"
            raise ConnectionError(f"could not subscribe to {self.topic_filter!r} at {where}: {why}")
        log.info("ingest worker %s subscribed to %s", self.client_id, self.topic_filter)

    def stop(self, timeout: float = 30.0) -> None:
        """Store and acknowledge what was received, then disconnect; the broker keeps the session.

        Peers adopt the session if this worker does not come back within ``stale_after``.
        """
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._heartbeat.stop()
        health.unregister(f"broker:{self.client_id}")
        if self._adoption is not None:
            self._adoption.stop(timeout)
        if self._db is not None and not (self._thread and self._thread.is_alive()):
            self._db.close()
            self._db = None

    def retire(self, timeout: float = 120.0) -> None:
        """End this worker's session for good: unsubscribe, store what it holds, end it, drop its lease.

        On a worker not started, retires the session of a worker that is gone: waits (within ``timeout``) for
        its lease to lapse or a peer's adoption to end, and raises LeaseHeld as soon as the worker renews it (it
        still runs). Refused (ConnectionError) unless another worker of the subscription runs: the last one gone,
        the broker would drop what gateways send. Raises ConnectionError if the session could not be ended; then
        it is kept, with nothing lost.
        """
        deadline = time.monotonic() + timeout
        if self._thread is None:
            self._holder = f"retire-{uuid.uuid4().hex[:8]}"
            self._launch(deadline, retiring=True)
        else:
            self._refuse_if_last()
            self._retiring.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self.stop()
        if not self._ended:
            raise ConnectionError(f"session {self.client_id!r} kept: {self._failure or 'retiring timed out'}")

    def _launch(self, deadline: float, retiring: bool = False) -> None:
        """Open the database, take the lease, run the loop (to retire the session, if ``retiring``).

        While another holds the lease, wait until ``deadline``; to retire, only until the worker renews it.
        """
        if self._thread is not None:
            raise RuntimeError("an IngestWorker starts once; make a new one to start again")
        self._db = open_database(self.config.database_url)
        sync_every_commit(self._db)  # see "Durability" above
        self._leases = SessionLeases(self._db, self.stale_after)
        try:
            if retiring:
                self._refuse_if_last()
                self._retiring.set()
            self._take_lease(deadline)
        except BaseException:
            self._db.close()
            self._db = None
            raise
        self._renew_at = time.monotonic() + self.heartbeat_interval
        self._thread = threading.Thread(target=self._run, name=f"ingest-{self.client_id}", daemon=True)
        self._thread.start()

    def _take_lease(self, deadline: float) -> None:
        first_seen = None
        while not self._holding:
            try:
                self._leases.acquire(self.client_id, self.topic_filter, self._holder)
                self._holding = True
            except LeaseHeld as exc:
                lease = self._leases.get(self.client_id)
                if lease is None:  # dropped in between: its session ended
                    continue
                first_seen = first_seen or lease
                renewed = self._retiring.is_set() and lease.holder == self.client_id and lease != first_seen
                if renewed or time.monotonic() + POLL_SECONDS > deadline:
                    raise LeaseHeld(f"{exc}{' (it renewed it: stop it first)' if renewed else ''}") from None
                time.sleep(POLL_SECONDS)

    def _refuse_if_last(self) -> None:
        # the caller's thread, not the worker's: a database handle of its own (a PostgreSQL connection, unlike
        # SQLite's, must not be used by two threads at once)
        db = open_database(self.config.database_url)
        try:
            live = SessionLeases(db, self.stale_after).live(self.topic_filter)
        finally:
            db.close()
        if not any(lease.client_id != self.client_id for lease in live):
            raise ConnectionError(
                f"no other worker of {self.topic_filter!r} runs: once {self.client_id!r} retired, the broker would "
                "drop what gateways send; start the worker that replaces it first (or stop this one instead)"
            )

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
        while not self._stopping.is_set() and not self._done:
            try:
                self._step()
            except (sqlite3.Error, DBAPIError) as exc:  # the lease table is busy or failing: tried again later
                log.warning("session %s: reading or writing its lease failed: %s", self.client_id, exc)
                self._stopping.wait(POLL_SECONDS)
        if self._client.socket() is not None:
            if self._pending:
                self._flush()
            self._client.disconnect()

    def _step(self) -> None:
        self._heartbeat.beat()
        self._tend_lease()
        if self._client.socket() is None:
            self._connect()
            return
        self._pump()
        if self._retiring.is_set() and self._connected and not self._drain_marker:
            self._begin_drain()
        if self._drained and not self._pending:
            self._end_session()
        elif self._drain_marker and time.monotonic() - self._progress_at > self.stale_after:
            self._give_up(
                f"nothing received for {self.stale_after:g} s, not even the drain marker: may this client "
                f"subscribe and publish to {self._drain_topic!r}?"
            )

    def _connect(self) -> None:
        wait = self._connect_after - time.monotonic()
        if wait > 0:
            self._stopping.wait(wait)
            return
        adopting = self._holder != self.client_id
        if adopting and self._connected_once:  # a takeover by the session's worker, or a lost connection
            self._give_up("lost the connection to the session (its worker may be back)")
            return
        # connect only while holding the lease: a peer may have taken it (and this session) since the last renewal
        self._holding = self._holding and self._leases.renew(self.client_id, self._holder)
        if not self._holding and adopting:
            self._give_up("lost the lease on the session")
            return
        if not self._holding:  # lost to a peer that took this worker for gone: wait until it is done
            try:
                self._leases.acquire(self.client_id, self.topic_filter, self._holder)
            except LeaseHeld as exc:
                self._retry_later(str(exc))
                return
            self._holding = True
            log.info("took back the lease on session %s", self.client_id)
        self._drain_marker, self._drained, self._connected, self._unsubscribe_mid = b"", False, False, None
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
            self._retry_later(f"cannot reach the broker: {connect_error(exc)}")

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
        """Store the batch, a message the store raises on alone as a dead letter (``cloud.ingest.isolation``)."""
        batch, self._pending = self._pending, []
        try:
            with metrics.INGEST_BATCH_SECONDS.time():
                store_isolating(self._db, batch, datetime.now(UTC), self._acknowledge)
        except Exception as exc:  # the store is down: acknowledge nothing more, let the broker deliver again
            self._stats.storage_errors += 1
            metrics.INGEST_STORAGE_ERRORS.inc()
            self._client.disconnect()
            self._retry_later(f"storing {len(batch)} messages failed, those not stored are not acknowledged: {exc!r}")
            return
        self._backoff = BACKOFF_SECONDS[0]
        security_events.raise_alerts(self._db)  # events about documents the cloud never issued: alert once each

    def _acknowledge(self, stored: Sequence[_Received], result: BatchResult) -> None:
        """Acknowledge what one transaction committed: stored, already there, or a dead letter."""
        for received in stored:
            if received.qos:
                self._client.ack(received.mid, received.qos)
        self._stats.batches += 1
        self._stats.stored += result.stored
        self._stats.duplicates += result.duplicates
        self._stats.dead_lettered += result.dead_lettered
        self._stats.isolated += result.isolated
        metrics.count_committed(stored, result)
        rejected = [r for r in stored if isinstance(r.decoded, Rejected)]
        if rejected:
            first = rejected[0]
            reason = first.decoded.reason
            try:  # a key of its own in JSON log lines, for a collector to filter on
                gateway = {"gateway_id": parse_gateway_topic(first.topic, self.config.topic_prefix).gateway_id}
            except ValueError:  # the topic itself is what was wrong
                gateway = {}
            log.warning(
                "dead-lettered %d message(s), first on %s: %s", len(rejected), first.topic, reason, extra=gateway
            )

    def _retry_later(self, reason: str) -> None:
        log.warning("%s; retrying in %.1f s", reason, self._backoff)
        self._last_error = reason
        self._connect_after = time.monotonic() + self._backoff
        self._backoff = min(2 * self._backoff, BACKOFF_SECONDS[1])

    # -- the session's lease, adopting peers, retiring (in the worker thread) --------------------------------

    def _tend_lease(self) -> None:
        """Every ``heartbeat_interval``: renew the lease (step aside if a peer took it), then adopt a lapsed one."""
        now = time.monotonic()
        if not self._holding or now < self._renew_at:
            return
        self._renew_at = now + self.heartbeat_interval
        if not self._leases.renew(self.client_id, self._holder):
            self._holding = False
            if self._holder != self.client_id:
                self._give_up("lost the lease on the session")
                return
            log.warning("session %s adopted by a peer that took this worker for gone: stepping aside", self.client_id)
            if self._client.socket() is not None:
                self._client.disconnect()  # the unacknowledged messages go to the adopter
            return
        if self._holder == self.client_id and not self._retiring.is_set() and self._subscribed:
            self._adopt_lapsed()

    def _adopt_lapsed(self) -> None:
        """Adopt one lapsed session of this subscription at a time, in a worker of its own (thread, connection)."""
        if self._adoption is not None:
            if self._adoption._thread.is_alive():
                return
            adopted, self._adoption = self._adoption, None
            adopted.stop()  # closes its database connection
            outcome = "ended" if adopted._ended else f"kept ({adopted._failure})"
            log.info("adopted session %s: %s, session %s", adopted.client_id, adopted.stats.line(), outcome)
        for lease in self._leases.lapsed(self.topic_filter):
            if lease.client_id == self.client_id:
                continue
            adopter = IngestWorker(
                self.config,
                client_id=lease.client_id,
                shared_group=self._shared_group,
                batch_size=self.batch_size,
                flush_interval=self.flush_interval,
                mqtt5=self._mqtt5,
                heartbeat_interval=self.heartbeat_interval,
                stale_after=self.stale_after,
            )
            adopter._holder = self.client_id
            try:
                adopter._launch(time.monotonic(), retiring=True)
            except ConnectionError:  # LeaseHeld: another peer was quicker
                continue
            log.warning(
                "adopting session %s: its lease lapsed %.1f s ago", lease.client_id, time.time() - lease.lapses_at
            )
            self._adoption = adopter
            return

    def _begin_drain(self) -> None:
        """Subscribe to our own drain topic; once granted, leave the shared subscription; once left, send a marker
        to ourselves: what the broker delivers before it is everything the session still held."""
        self._drain_marker = uuid.uuid4().hex.encode()
        self._progress_at = time.monotonic()
        _, self._drain_subscribe_mid = self._client.subscribe(self._drain_topic, qos=1)

    def _end_session(self) -> None:
        """Everything the session held is stored: end it (a clean connection) and forget its lease."""
        if not self._leases.renew(self.client_id, self._holder):
            self._give_up("lost the lease on the session before ending it")
            return
        self._client.disconnect()
        try:
            _close_session(self._endpoint, self.client_id, self._mqtt5)
        except (OSError, ConnectionError) as exc:
            self._give_up(f"could not end the session: {exc}")
            return
        self._leases.drop(self.client_id, self._holder)
        self._ended = self._done = True
        log.info("session %s ended for good: %s", self.client_id, self._stats.line())

    def _give_up(self, reason: str) -> None:
        """Stop retiring and keep the session, back in the shared subscription, handing an adopted lease back to
        its worker (peers retry later)."""
        log.warning("retiring session %s stopped, the session is kept: %s", self.client_id, reason)
        self._failure = reason
        self._done = True
        if self._unsubscribe_mid is not None and self._client.socket() is not None:
            self._subscribe(self._client)  # sent before the loop's DISCONNECT
        if self._holder != self.client_id:
            self._leases.hand_back(self.client_id, self._holder)

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
        client.on_unsubscribe = self._on_unsubscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        return client

    def _on_connect(self, client: mqtt.Client, _userdata, flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            self._refusal = f"the broker refused the connection: {reason_code}"
            self._settled.set()
            if self._retiring.is_set():
                self._give_up(self._refusal)
            return
        log.info("connected to the broker as %s (session present: %s)", self.client_id, flags.session_present)
        self._connected = self._connected_once = True
        if not self._retiring.is_set():  # retiring, the loop begins the drain
            self._subscribe(client)

    def _subscribe(self, client: mqtt.Client) -> None:
        if self._mqtt5:  # a re-subscription must not replay retained messages the session already had
            options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            client.subscribe(self.topic_filter, options=options)
        else:
            client.subscribe(self.topic_filter, qos=1)

    def _on_subscribe(self, client: mqtt.Client, _userdata, mid, reason_codes, _properties) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if self._drain_marker and mid == self._drain_subscribe_mid:
            if refused:  # still in the shared subscription: nothing is left behind
                self._give_up(f"the broker refused the subscription to {self._drain_topic!r}: {', '.join(refused)}")
            else:
                _, self._unsubscribe_mid = client.unsubscribe(self.topic_filter)
            return
        if refused:
            self._refusal = f"the broker refused the subscription: {', '.join(refused)}"
        self._subscribed = not refused
        self._settled.set()

    def _on_unsubscribe(self, client: mqtt.Client, _userdata, mid, _reason_codes, _properties) -> None:
        if mid == self._unsubscribe_mid and self._drain_marker:
            client.publish(self._drain_topic, self._drain_marker, qos=1)

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        self._progress_at = time.monotonic()
        if message.topic == self._drain_topic:  # not a gateway's message: our own marker, or one of an earlier try
            self._drained = self._drained or message.payload == self._drain_marker
            self._client.ack(message.mid, message.qos)
            return
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
        self._connected = False
        if self._pending:
            log.info(
                "disconnected (%s): %d unacknowledged messages will be delivered again", reason_code, len(self._pending)
            )
        self._pending = []


def _close_session(endpoint: MqttEndpoint, client_id: str, mqtt5: bool, timeout: float = 10.0) -> None:
    """End a broker session for good: connect with a clean session under its client id, then disconnect."""
    if mqtt5:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    else:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=True
        )
    apply_endpoint(client, endpoint)
    answers = []
    client.on_connect = lambda _c, _u, _flags, reason_code, _p: answers.append(reason_code)
    if mqtt5:
        client.connect(endpoint.host, endpoint.port, KEEPALIVE_SECONDS, clean_start=True)
    else:
        client.connect(endpoint.host, endpoint.port, KEEPALIVE_SECONDS)
    deadline = time.monotonic() + timeout
    while not answers and time.monotonic() < deadline:
        if client.loop(POLL_SECONDS) != MQTTErrorCode.MQTT_ERR_SUCCESS:
            break
    client.disconnect()
    if not answers or answers[0].is_failure:
        raise ConnectionError(f"the broker did not accept a clean session for {client_id!r}: {answers or 'no answer'}")
