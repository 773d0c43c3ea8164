"""Every uplink message type, generated valid, at its bounds and hostile, through ``decode`` and the store.

For each type, 1,000 generated messages go through ``decode`` and ``store_isolating`` into a real SQLite file.
Nothing may raise; each message is accounted for: stored (or a duplicate of a stored ``msg_id``) or a dead letter
with its reason, and never a dead letter of the store's (``store:``), since what validation accepts the store must
hold. Afterwards the stored rows are read back as users read them, over HTTP from the API (predictions, gateways,
features, outcomes, monitoring performance and report) and as stored text (every time ``from_iso``-readable).
Then the same through Mosquitto and a running ``IngestWorker``: a few hundred hostile messages, the issue's own
(a schema-valid status with ``director_sequence`` 2**64) and a message the store raises on (a trigger), then a
valid canary from another gateway, stored within seconds.

Figures: run with ``-s`` to print, per type, the examples and how many were stored and dead-lettered.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.api.app import create_app
from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.ingest.decode import Accepted, Rejected, decode
from cloud.ingest.isolation import store_isolating
from cloud.storage import from_iso, open_database
from shared import strict_json
from shared.topics import Up, up_topic
from tests import rows
from tests.api.conftest import auth, key_per_role
from tests.api.server import ThreadedServer
from tests.ingest.helpers import count, event, status, wait_for
from tests.ingest.uplink_strategies import GATEWAYS, VALID, uplink
from tests.rows import rows_of

# reads stored forms with SQLite's JSON functions; a SQLite trigger poisons a write
pytestmark = pytest.mark.sqlite_only

EXAMPLES = 1000
PREFIX = "prop/iotsphere/v1"
NOW = datetime.now(UTC)
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
#: every time column ingest writes, by table
TIMES = {
    "features": ["window_end"],
    "predictions": ["made_at", "feature_window_end"],
    "outcomes": ["observed_at", "received_at"],
    "gateways": ["first_seen", "last_seen"],
    "gateway_events": ["sent_at"],
    "devices": ["first_seen", "last_seen"],
    "dead_letters": ["received_at"],
}

JSON_COLUMNS = [("predictions", "outputs_json"), ("gateways", "status_json"), ("feature_sets", "names_json")]
NUMBER_COLUMNS = [("predictions", "latency_ms"), ("outcomes", "value"), ("gateways", "director_sequence")]


@dataclass(frozen=True)
class Item:
    topic: str
    payload: bytes
    decoded: Accepted | Rejected


def _ingest(conn: sqlite3.Connection, topic: str, payload: bytes, tally: Counter) -> None:
    """One message through decode and the store, accounted for."""
    decoded = decode(topic, payload, PREFIX)
    item, committed = Item(topic, payload, decoded), []
    letters_before = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    store_isolating(conn, [item], NOW, lambda part, result: committed.append((part, result)))

    [(part, result)] = committed
    assert part == [item]
    assert result.isolated == 0, f"the store raised on a message validation accepted: {payload[:300]!r}"
    letters = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] - letters_before
    assert letters == result.dead_lettered
    if isinstance(decoded, Accepted) and not letters:
        found = conn.execute("SELECT 1 FROM ingested_messages WHERE msg_id = ?", [decoded.message.msg_id]).fetchone()
        assert found, "an accepted message is neither stored nor a duplicate"
        tally["stored" if result.stored else "duplicate"] += 1
        return
    [(reason,)] = conn.execute("SELECT reason FROM dead_letters ORDER BY id DESC LIMIT 1").fetchall()
    if isinstance(decoded, Rejected):
        assert reason == decoded.reason
    else:  # the store's own check: a features message naming other features than its version has
        assert reason.startswith("invalid: feature set "), reason
    assert letters == 1 and reason.split(":")[0] in {"topic", "oversized", "malformed", "invalid", "gateway-mismatch"}
    tally["dead_lettered"] += 1


def _stored_forms_read_back(conn: sqlite3.Connection) -> None:
    """Stored JSON is JSON (as SQLite's and a strict reader see it), stored numbers are finite, and stored times are
    fixed-width ``iso`` text: they parse, and their text order is time order."""
    for table, column in JSON_COLUMNS:
        for (text,) in conn.execute(f"SELECT {column} FROM {table}"):
            strict_json.loads(text)
        assert not conn.execute(f"SELECT count(*) FROM {table} WHERE NOT json_valid({column})").fetchone()[0]
    for table, column in NUMBER_COLUMNS:
        assert all(v is None or math.isfinite(v) for (v,) in conn.execute(f"SELECT {column} FROM {table}"))
    for table, columns in TIMES.items():
        for column in columns:
            values = [v for (v,) in conn.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")]
            parsed = [from_iso(v) for v in values]
            assert sorted(values) == [v for _, v in sorted(zip(parsed, values, strict=True))], (table, column)


def _api_reads_back(config: CloudConfig, conn: sqlite3.Connection) -> int:
    """Every read route over what was stored answers, never 5xx; returns how many requests were made."""
    db = open_database(config.database_url)
    try:
        viewer = auth(key_per_role(db)[Role.OPERATOR])  # dead letters need an operator
    finally:
        db.close()
    paths = ["/api/gateways", "/api/dead-letters?limit=500"]
    paths += [f"/api/gateways/{quote(g)}" for g in GATEWAYS]
    for device, kind in conn.execute("SELECT DISTINCT device_id, prediction_type FROM predictions"):
        paths += [
            f"/api/predictions/water-heaters/{device}/{kind}",
            f"/api/predictions/water-heaters/{device}/{kind}/history",
        ]
    for (device,) in conn.execute("SELECT DISTINCT device_id FROM features"):
        paths += [f"/api/features/{device}?limit=10000", f"/api/features/{device}/latest"]
    for (prediction_id,) in conn.execute(
        "SELECT DISTINCT prediction_id FROM outcomes WHERE prediction_id IS NOT NULL LIMIT 50"
    ):
        paths.append(f"/api/predictions/{quote(prediction_id)}/outcomes")
    for (model,) in conn.execute("SELECT DISTINCT model_name FROM predictions"):
        everything = "start=1970-01-01T00:00:00Z&end=2199-12-31T23:59:59Z&window=all"
        paths += [
            f"/api/monitoring/performance/{model}?{everything}",
            f"/api/monitoring/performance/{model}",
            f"/api/monitoring/report?model_name={model}",
            f"/api/monitoring/report?model_name={model}&format=html",
        ]
    paths.append("/api/monitoring/report")
    with ThreadedServer(create_app(config)) as server, httpx.Client(base_url=server.base_url, timeout=60) as http:
        for path in paths:
            response = http.get(path, headers=viewer)
            assert response.status_code < 500, (path, response.status_code, response.text[:500])
            assert response.status_code in (200, 404), (path, response.status_code, response.text[:500])
    return len(paths)


@pytest.mark.parametrize("channel", list(VALID), ids=[c.value for c in VALID])
def test_every_generated_message_is_stored_or_a_dead_letter_and_what_is_stored_reads_back(channel, tmp_path):
    config = CloudConfig(data_dir=tmp_path)
    db = open_database(config.database_url)
    tally: Counter = Counter()

    @PROPERTY
    @given(message=uplink(channel, PREFIX))
    def ingest(message: tuple[str, bytes]) -> None:
        tally["examples"] += 1
        _ingest(db.conn, *message, tally)

    try:
        ingest()
        assert tally["examples"] >= EXAMPLES
        assert tally["stored"] > EXAMPLES // 5 and tally["dead_lettered"] > EXAMPLES // 5, tally
        _stored_forms_read_back(db.conn)
        requests = _api_reads_back(config, db.conn)
    finally:
        db.close()
    print(f"\n{channel.value}: {dict(tally)}, {requests} API reads of what was stored")


@pytest.mark.mqtt
def test_through_the_broker_hostile_messages_and_one_the_store_raises_on_hold_back_no_canary(
    make_worker, publisher, db, config
):
    """A running worker, a few hundred generated messages (most hostile), the issue's status with
    ``director_sequence`` 2**64, an event that passes validation and makes the store raise (a trigger: any exception
    will do), then a valid canary from another gateway: the canary is stored within seconds, the worker runs on,
    and every refused message is a dead letter."""
    db.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON gateway_events WHEN NEW.detail = 'poison'"
        " BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
    )
    db.conn.commit()
    prefix = config.topic_prefix
    generated: list[tuple[str, bytes]] = []

    @settings(PROPERTY, max_examples=60)
    @given(message=st.sampled_from(list(VALID)).flatmap(lambda channel: uplink(channel, prefix)))
    def collect(message: tuple[str, bytes]) -> None:
        generated.append(message)

    for _ in range(5):  # a few hundred, every type
        collect()
    issue = status(gateway="gw-issue").model_dump(mode="json", by_alias=True) | {"director_sequence": 2**64}
    messages = [
        *generated,
        (up_topic("gw-issue", Up.STATUS, prefix), strict_json_dumps(issue)),
        (up_topic("gw-poison", Up.EVENTS, prefix), event(gateway="gw-poison", detail="poison").to_json()),
    ]
    refused = sum(isinstance(decode(topic, payload, prefix), Rejected) for topic, payload in messages)
    worker = make_worker(batch_size=100)
    worker.start()

    for topic, payload in messages:
        publisher.raw(topic, payload)
    canary = status(gateway="gw-canary")
    sent = time.monotonic()
    publisher.send(canary, Up.STATUS)
    wait_for(lambda: rows.count(db, "gateways", gateway_id="gw-canary") == 1, timeout=10, what="the canary")
    latency = time.monotonic() - sent

    total = len(messages) + 1

    def handled() -> int:
        return worker.stats.stored + worker.stats.duplicates + worker.stats.dead_lettered

    wait_for(lambda: handled() == total, what="every message stored, a duplicate or a dead letter")
    assert worker._thread.is_alive() and worker.stats.received == total and worker.stats.storage_errors == 0
    assert worker.stats.isolated == 1
    letters = {row["topic"]: row["reason"] for row in rows_of(db, "dead_letters")}
    assert letters[up_topic("gw-poison", Up.EVENTS, prefix)] == "store: IntegrityError: poisoned"
    assert letters[up_topic("gw-issue", Up.STATUS, prefix)].startswith("invalid: ")
    # refused by decode, or by the store's check of a features message against its version's names, or isolated
    conflicts = db.execute("SELECT count(*) FROM dead_letters WHERE reason LIKE 'invalid: feature set %'").fetchone()[0]
    assert count(db, "dead_letters") == refused + conflicts + 1 == worker.stats.dead_lettered
    assert count(db, "ingested_messages") == worker.stats.stored
    print(
        f"\nthrough Mosquitto: {len(messages)} messages, {refused + 1} dead letters, canary stored in {latency:.3f} s"
    )


def strict_json_dumps(value: object) -> bytes:
    return json.dumps(value, allow_nan=False).encode()
