"""Delivering director documents: retained, QoS 1, on each gateway's ``down/desired``.

Documents are stored before they are sent and marked published only after the broker's PUBACK,
so a broker outage delays a rollout but never loses one: ``DirectorPublisher`` keeps sending
what is pending, directs newly seen gateways to the fleet's desired state, retries gateways that
could not be directed, re-issues documents before they expire and re-signs TUF metadata before it
expires (issuing through ``cloud.releases.service``, as every path that directs gateways does). Every such path
reports per gateway (``Directed``): the documents issued, the gateways that could not be directed and why, and why
nothing is on the broker yet if so.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType

import paho.mqtt.client as mqtt
import sqlite_utils

from cloud.config import PASSPHRASE_ENV, CloudConfig, key_passphrase
from cloud.errors import TemporarilyUnavailable
from cloud.releases import director, keystore, tuf_repo
from cloud.workers import PeriodicWorker
from shared.director import DirectorDocument
from shared.mqtt_url import apply_endpoint, parse_mqtt_url
from shared.topics import Down, down_topic

log = logging.getLogger(__name__)


class PublishError(TemporarilyUnavailable):
    """The broker did not take a director document; it stays stored and is published later."""


class RetainedPublisher:
    """One MQTT 3.1.1 connection that publishes retained QoS 1 messages, each confirmed by PUBACK."""

    def __init__(self, mqtt_url: str, timeout: float = 10.0):
        self.endpoint = parse_mqtt_url(mqtt_url)
        self.timeout = timeout
        self._connected = threading.Event()
        self._refused: str | None = None
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"iotsphere-director-{uuid.uuid4().hex[:12]}"
        )
        apply_endpoint(self.client, self.endpoint)
        self.client.on_connect = self._on_connect

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
        self._connected.set()

    def __enter__(self) -> RetainedPublisher:
        where = f"{self.endpoint.host}:{self.endpoint.port}"
        try:
            self.client.connect(self.endpoint.host, self.endpoint.port)
        except OSError as exc:
            raise PublishError(f"cannot reach the MQTT broker at {where}: {exc}") from exc
        self.client.loop_start()
        if not self._connected.wait(self.timeout) or self._refused:
            self.close()
            raise PublishError(
                f"the MQTT broker at {where} did not accept the connection: {self._refused or 'timeout'}"
            )
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=True)
        try:
            info.wait_for_publish(self.timeout)
        except (RuntimeError, ValueError) as exc:
            raise PublishError(f"publishing to {topic} failed: {exc}") from exc
        if not info.is_published():
            raise PublishError(f"no PUBACK for {topic} within {self.timeout} s")


def desired_topic(config: CloudConfig, gateway_id: str) -> str:
    return down_topic(gateway_id, Down.DESIRED, config.topic_prefix)


def publish_pending(config: CloudConfig, db: sqlite_utils.Database, timeout: float = 10.0) -> list[DirectorDocument]:
    """Send every stored document not yet confirmed by the broker; return those sent."""
    pending = director.unpublished_gateways(db)
    if not pending:
        return []
    sent = []
    with RetainedPublisher(config.mqtt_url, timeout) as publisher:
        for gateway_id in pending:
            document = director.latest_document(db, gateway_id)
            if document is None:
                continue
            publisher.publish(desired_topic(config, gateway_id), document.to_json())
            director.mark_published(db, gateway_id, document.signed.sequence)
            sent.append(document)
    return sent


@dataclass(frozen=True)
class Directed:
    """What directing gateways did, per gateway: documents issued, gateways that could not be directed (each
    recorded for the publisher to retry), and why the documents are not on the broker yet if they are not."""

    documents: list[DirectorDocument] = field(default_factory=list)
    failures: list[director.IssueFailure] = field(default_factory=list)
    #: set when the broker could not be reached: the documents are stored and the publisher sends them later
    pending: str | None = None

    @classmethod
    def of(cls, issued: director.Issued, pending: str | None) -> Directed:
        return cls(issued.documents, issued.failures, pending)


def deliver(config: CloudConfig, db: sqlite_utils.Database, timeout: float = 10.0) -> str | None:
    """Send what is pending; why it is not on the broker yet (stored, sent later), or None when it is."""
    try:
        publish_pending(config, db, timeout)
    except PublishError as exc:  # expected while the broker is down: the documents stay pending
        return str(exc)
    return None


class DirectorPublisher(PeriodicWorker):
    """Background worker keeping every gateway's desired state delivered, fresh and verifiable.

    Each pass: direct gateways without a document to the fleet's desired state, re-issue documents
    within half their validity of expiring, send pending documents, and renew TUF metadata past
    half its lifetime. Signing needs the key passphrase (argument or ``IOTSPHERE_KEY_PASSPHRASE``);
    without it the worker only sends what is pending. One failing step never stops the others.
    """

    name = "director-publisher"

    def __init__(
        self,
        config: CloudConfig,
        passphrase: str | None = None,
        interval: float = 30.0,
        validity: timedelta = director.DEFAULT_VALIDITY,
        policy: tuf_repo.ExpiryPolicy | None = None,
    ):
        super().__init__(config, interval)
        self.passphrase = passphrase or key_passphrase()
        self.validity = validity
        self.policy = policy
        self.counts: Counter[str] = Counter()

    def ready(self) -> bool:
        """Check the passphrase up front (a wrong one fails here, not silently later)."""
        if not self.passphrase:
            log.warning("no %s: the director publisher will send pending documents but sign nothing", PASSPHRASE_ENV)
        elif tuf_repo.is_initialized(self.config):
            keystore.director_key(self.config.keys_dir, self.passphrase)
        else:
            log.warning("no TUF repository yet (`iotsphere cloud init`): the director publisher signs once it exists")
        return True

    def step(self, db: sqlite_utils.Database) -> bool:
        self.run_once(db)
        return False

    def run_once(self, db: sqlite_utils.Database, now: datetime | None = None) -> Counter[str]:
        """One pass; returns what it did this time (also added to ``counts``)."""
        now = now or datetime.now(UTC)
        done: Counter[str] = Counter()
        if self.passphrase and tuf_repo.is_initialized(self.config):
            self._step(done, "issued", lambda: self._issue(db, self._new_gateways(db), now, done, "issued"))
            self._step(done, "retried", lambda: self._issue(db, director.failures_due(db, now), now, done, "retried"))
            self._step(done, "renewed", lambda: self._issue(db, self._expiring(db, now), now, done, "renewed"))
            self._step(
                done, "tuf_renewed", lambda: len(tuf_repo.renew_expiring(self.config, self.passphrase, self.policy))
            )
        self._step(done, "published", lambda: len(publish_pending(self.config, db)))
        self.counts.update(done)
        return done

    def _step(self, done: Counter[str], name: str, action) -> None:
        try:
            done[name] += action()
        except PublishError as exc:  # expected while the broker is down: the documents stay pending
            done[f"{name}_errors"] += 1
            log.warning("director publisher: %s", exc)
        except Exception:  # the worker outlives a bad row or a full disk; the error is counted and logged
            done[f"{name}_errors"] += 1
            log.exception("director publisher: %s failed", name)

    def _new_gateways(self, db: sqlite_utils.Database) -> list[str]:
        new = director.gateways_without_document(db) if director.fleet_desired(db) else []
        return _without_pending_retry(db, new)

    def _expiring(self, db: sqlite_utils.Database, now: datetime) -> list[str]:
        """Documents within half their validity of expiring."""
        return _without_pending_retry(db, director.gateways_expiring(db, now + self.validity / 2))

    def _issue(
        self, db: sqlite_utils.Database, gateway_ids: list[str], now: datetime, done: Counter[str], name: str
    ) -> int:
        """Issue to ``gateway_ids``; count (as ``<name>_failed``) and log the gateways that could not be directed."""
        if not gateway_ids:
            return 0
        from cloud.releases.service import ReleaseService  # the service delivers through this module

        issued = ReleaseService(self.config, self.passphrase).direct(db, gateway_ids, validity=self.validity, now=now)
        done[f"{name}_failed"] += len(issued.failures)
        for failure in issued.failures:
            log.warning("director publisher: %s not directed: %s", failure.gateway_id, failure.reason)
        return len(issued.documents)


def _without_pending_retry(db: sqlite_utils.Database, gateway_ids: list[str]) -> list[str]:
    """``gateway_ids`` but those with a recorded failure: they wait for their retry (and its backoff)."""
    failed = {failure.gateway_id for failure in director.failures(db)}
    return [gateway_id for gateway_id in gateway_ids if gateway_id not in failed]
