"""Forged and malformed director documents at the updater, against a real TUF repository over real HTTP.

Each reject names the document by its digest; a flood of forged documents makes at most one fetch of the director
keys per ``key_refresh_interval`` (the requests are counted on the HTTP server); a real key rotation still gets
through once the interval is over; and documents that break parsers are rejected with ``director.format`` like any
other bad document, never by an exception out of the updater.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from cloud.api.app import create_app
from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.releases import keystore, rotation, tuf_repo
from edge_agent.config import DEFAULT_KEY_REFRESH_INTERVAL
from edge_agent.events import AgentEvent
from edge_agent.updater import UpdateResult
from shared.director import RejectRule, document_digest
from shared.messages import EventKind
from shared.signing import generate_private_key
from tests.api.conftest import ServedCloud
from tests.api.server import ThreadedServer
from tests.edge.releases import build_release
from tests.edge.tuf_world import GATEWAY, PASSPHRASE, Cloud, Gateway, make_gateway

MODEL = "component_failure"


class CountingApp:
    """The cloud's app, counting the requests it is sent by path."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.paths: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths[scope["path"]] += 1
        await self.app(scope, receive, send)

    def count(self, suffix: str) -> int:
        return sum(n for path, n in self.paths.items() if path.endswith(suffix))


@pytest.fixture
def counted(tmp_path: Path) -> Iterator[tuple[Cloud, CountingApp]]:
    config = CloudConfig(data_dir=tmp_path / "cloud")
    tuf_repo.init_repository(config, PASSPHRASE)
    app = CountingApp(create_app(config))
    db_token = _gateway_token(config)
    with ThreadedServer(app) as server:
        served = ServedCloud(config, {Role.GATEWAY: db_token}, None, server.base_url)  # type: ignore[arg-type]
        cloud = Cloud(served, keystore.director_key(config.keys_dir, PASSPHRASE))
        cloud.publish(build_release("1", seed=0))
        yield cloud, app


def _gateway_token(config: CloudConfig) -> str:
    from cloud.storage import open_database

    db = open_database(config.database_path)
    try:
        return KeyStore(db).create(Role.GATEWAY, "forgery tests", GATEWAY).token
    finally:
        db.conn.close()


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _forged(genuine: bytes, position: int) -> bytes:
    """``genuine`` with the signature's hex digit at ``position`` changed: same sequence, other digest."""
    at = genuine.index(b'"sig": "') + len(b'"sig": "') + position
    digit = b"0" if genuine[at : at + 1] != b"0" else b"1"
    return genuine[:at] + digit + genuine[at + 1 :]


@pytest.fixture
def running(tmp_path: Path, counted: tuple[Cloud, CountingApp]) -> tuple[Cloud, CountingApp, Gateway, Clock, bytes]:
    """A gateway running version 1 under document 1, with its own clock."""
    cloud, app = counted
    gateway = make_gateway(tmp_path / "gw", cloud)
    clock = Clock()
    gateway.updater.clock = clock
    genuine = cloud.document(1, {MODEL: cloud.desired(MODEL, "1")})
    assert gateway.updater.handle(genuine) is UpdateResult.APPLIED
    gateway.events.clear()
    return cloud, app, gateway, clock, genuine


def test_a_flood_of_forged_documents_fetches_the_director_keys_once_per_interval(running):
    cloud, app, gateway, clock, genuine = running
    keys_before, refreshes_before = app.count("keys.json"), app.count("timestamp.json")
    forgeries = [_forged(genuine, position) for position in range(40)]
    assert len({document_digest(f) for f in forgeries}) == 40

    results = [gateway.updater.handle(forged) for forged in forgeries]
    assert results[0] is UpdateResult.REJECTED, "the one fetch showed the keys unchanged: a forgery"
    assert set(results[1:]) == {UpdateResult.DEFERRED}, "held off: they may verify with keys not fetched yet"
    assert app.count("keys.json") - keys_before == 1
    assert app.count("timestamp.json") - refreshes_before == 1
    rejects = [e for e in gateway.events if e.kind is EventKind.REJECT]
    assert [e.document_digest for e in rejects] == [document_digest(f) for f in forgeries]
    assert {(e.rule, e.director_sequence) for e in rejects} == {(RejectRule.DIRECTOR_SIGNATURE.value, 1)}

    clock.now += DEFAULT_KEY_REFRESH_INTERVAL - timedelta(seconds=1)
    assert gateway.updater.handle(forgeries[0]) is UpdateResult.DEFERRED
    assert app.count("keys.json") - keys_before == 1
    clock.now += timedelta(seconds=2)
    for forged in forgeries:
        gateway.updater.handle(forged)
    assert app.count("keys.json") - keys_before == 2, "one more fetch per interval"
    assert gateway.active_version() == "1" and gateway.updater.accepted_sequence == 1


def test_a_key_rotation_during_a_flood_gets_through_once_the_interval_is_over(running):
    cloud, app, gateway, clock, genuine = running
    assert gateway.updater.handle(_forged(genuine, 0)) is UpdateResult.REJECTED
    rotation.rotate_key(cloud.config, PASSPHRASE, keystore.DIRECTOR)
    rotated = cloud.document(
        2, {MODEL: cloud.desired(MODEL, "1")}, key=keystore.director_key(cloud.config.keys_dir, PASSPHRASE)
    )

    assert gateway.updater.handle(rotated) is UpdateResult.DEFERRED
    assert "fetched through TUF again from" in gateway.last_event().detail
    clock.now += DEFAULT_KEY_REFRESH_INTERVAL + timedelta(seconds=1)
    assert gateway.updater.handle(rotated) is UpdateResult.APPLIED
    assert gateway.updater.accepted_sequence == 2


def test_a_key_rotation_with_no_forgery_before_it_is_fetched_at_once(running):
    cloud, app, gateway, clock, genuine = running
    rotation.rotate_key(cloud.config, PASSPHRASE, keystore.DIRECTOR)
    new_key = keystore.director_key(cloud.config.keys_dir, PASSPHRASE)
    assert (
        gateway.updater.handle(cloud.document(2, {MODEL: cloud.desired(MODEL, "1")}, key=new_key))
        is UpdateResult.APPLIED
    )
    # and the first forgery after it is still found out at once
    assert gateway.updater.handle(cloud.document(3, {}, key=generate_private_key())) is UpdateResult.REJECTED


def test_a_fetch_held_off_from_the_future_holds_nothing_after_the_clock_was_set_back(running):
    cloud, app, gateway, clock, genuine = running
    assert gateway.updater.handle(_forged(genuine, 0)) is UpdateResult.REJECTED
    clock.now -= timedelta(days=365)
    assert gateway.updater.handle(_forged(genuine, 1)) is UpdateResult.REJECTED, "fetched again, not held a year"


#: documents that break parsers, and the sequence their reject may report
MALFORMED = {
    "sequence 1e400": (b'{"signed": {"sequence": 1e400}, "signatures": []}', None),
    "sequence 2**64": (b'{"signed": {"sequence": %d}, "signatures": []}' % 2**64, None),
    "sequence NaN": (b'{"signed": {"sequence": NaN}}', None),
    "sequence true": (b'{"signed": {"sequence": true}}', None),
    "sequence as text": (b'{"signed": {"sequence": "7"}}', None),
    "fields missing": (b'{"signed": {"sequence": 7}}', 7),
    "nested 100,000 deep": (b'{"signed": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", None),
    "unclosed, 100,000 deep": (b"[" * 100_000, None),
    "not JSON": (b"\xff\xfe\x00garbage", None),
    "a list": (b"[]", None),
}


def test_a_malformed_document_is_rejected_with_its_rule_and_digest(running):
    cloud, app, gateway, clock, genuine = running
    for case, (payload, claimed) in MALFORMED.items():
        assert gateway.updater.handle(payload) is UpdateResult.REJECTED, case
        event: AgentEvent = gateway.last_event()
        assert (event.kind, event.rule) == (EventKind.REJECT, RejectRule.DIRECTOR_FORMAT.value), case
        assert (event.document_digest, event.director_sequence) == (document_digest(payload), claimed), case
        assert event.to_message(GATEWAY).document_digest == document_digest(payload), case  # valid on the wire
    assert gateway.active_version() == "1"
    assert len([e for e in gateway.events if e.kind is EventKind.REJECT]) == len(MALFORMED)


def test_every_event_about_a_document_names_its_digest_and_commits_name_the_activating_one(running):
    cloud, app, gateway, clock, genuine = running
    cloud.publish(build_release("2", seed=1))
    second = cloud.document(2, {MODEL: cloud.desired(MODEL, "2")})
    assert gateway.updater.handle(second) is UpdateResult.APPLIED
    assert [(e.kind, e.document_digest) for e in gateway.events] == [
        (EventKind.DOWNLOAD, document_digest(second)),
        (EventKind.INSTALL, document_digest(second)),
        (EventKind.ACTIVATE, document_digest(second)),
    ]
    renewal = cloud.document(3, {MODEL: cloud.desired(MODEL, "2")})  # names what runs: no event, a new accepted one
    assert gateway.updater.handle(renewal) is UpdateResult.APPLIED
    commit = gateway.updater.document_digest_of(AgentEvent(EventKind.COMMIT, MODEL, "2", 2))
    assert commit.document_digest == document_digest(second)
    assert gateway.updater.document_digest_of(AgentEvent(EventKind.COMMIT, MODEL, "1", 1)).document_digest is None, (
        "documents no release in use came from are forgotten"
    )
