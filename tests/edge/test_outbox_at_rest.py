"""A technician's notes rest encrypted in the gateway's outbox file, and go upstream in plain text.

Real SQLite files (the note's bytes are looked for in the file and its WAL) and real Mosquitto.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.outbox import OUTBOX_KEY_FILE, Outbox
from edge_agent.payload_seal import PREFIX
from shared.field_cipher import FieldCipher, key_file
from shared.messages import Component, FeedbackSource, Outcome, OutcomeBatch, OutcomeResult
from shared.topics import Up, up_topic
from tests.edge.mqtt_helpers import Collector, unique_prefix, wait_for
from tests.edge.test_outbox import SHARED_BROKER, Link

NOTE = "tenant away until the 14th, spare key under the mat"
TECHNICIAN = "Jo Q. Private"


def _outcome(prefix: str = "iotsphere/v1") -> tuple[str, bytes, str, str]:
    outcome = Outcome(
        device_id="wh-1",
        source=FeedbackSource.TECHNICIAN,
        observed_at=datetime(2026, 3, 1, tzinfo=UTC),
        component=Component.HEATING_ELEMENT,
        result=OutcomeResult.FAILED,
        technician=TECHNICIAN,
        notes=NOTE,
    )
    batch = OutcomeBatch(gateway_id="gw-1", outcomes=[outcome])
    return up_topic("gw-1", Up.OUTCOMES, prefix), batch.to_json(), batch.msg_id, Up.OUTCOMES.value


def _files_hold(folder: Path, needle: str) -> bool:
    return any(needle.encode() in path.read_bytes() for path in folder.glob("outbox.sqlite3*"))


def test_notes_never_reach_the_outbox_file_and_come_back_whole(tmp_path: Path) -> None:
    topic, payload, msg_id, channel = _outcome()
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    outbox.append(topic, payload, msg_id, channel)
    outbox.append(topic, b'{"n": 1}', "bulk-1", "features")
    assert not _files_hold(tmp_path, NOTE) and not _files_hold(tmp_path, TECHNICIAN)  # WAL included
    outbox.close()

    reopened = Outbox(tmp_path / "outbox.sqlite3")  # as the agent after a restart, or the technician CLI
    rows = reopened.take()
    reopened.close()

    assert not _files_hold(tmp_path, NOTE)
    assert [(row.payload, row.msg_id) for row in rows] == [(payload, msg_id), (b'{"n": 1}', "bulk-1")]
    assert (tmp_path / OUTBOX_KEY_FILE).stat().st_mode & 0o077 == 0


def _stored_by_an_older_agent(folder: Path, stored: bytes) -> None:
    topic, payload, msg_id, channel = _outcome()
    Outbox(folder / "outbox.sqlite3").close()
    conn = sqlite3.connect(folder / "outbox.sqlite3")
    with conn:
        conn.execute(
            "INSERT INTO outbox (topic, payload, msg_id, channel, created_at, priority, size)"
            " VALUES (?, ?, ?, ?, 0, 0, ?)",
            (topic, stored, msg_id, channel, len(payload)),
        )
    conn.close()


def _stored_payloads(folder: Path) -> list[bytes]:
    conn = sqlite3.connect(folder / "outbox.sqlite3")
    try:
        return [bytes(payload) for (payload,) in conn.execute("SELECT payload FROM outbox")]
    finally:
        conn.close()


def test_plain_rows_an_older_agent_left_are_encrypted_when_the_file_is_opened(tmp_path: Path) -> None:
    payload = _outcome()[1]
    _stored_by_an_older_agent(tmp_path, payload)  # what an agent from before encryption stored
    assert _files_hold(tmp_path, NOTE)

    outbox = Outbox(tmp_path / "outbox.sqlite3")
    [row] = outbox.pending()
    outbox.close()

    assert not _files_hold(tmp_path, NOTE)
    assert row.payload == payload
    assert [stored[: len(PREFIX)] for stored in _stored_payloads(tmp_path)] == [PREFIX]


def test_rows_an_older_agent_sealed_with_fernet_are_sealed_again_and_come_back_whole(tmp_path: Path) -> None:
    """Agents before libsodium sealed outcomes with Fernet under the same key file: an upgraded agent opens them
    and seals them again when it opens the file, so it reads Fernet only that once."""
    payload = _outcome()[1]
    fernet = FieldCipher(key_file(tmp_path / OUTBOX_KEY_FILE))
    _stored_by_an_older_agent(tmp_path, fernet.encrypt_bytes(payload))
    assert [stored[:7] for stored in _stored_payloads(tmp_path)] == [b"fernet:"]

    outbox = Outbox(tmp_path / "outbox.sqlite3")
    [row] = outbox.pending()
    outbox.close()

    assert row.payload == payload
    [stored] = _stored_payloads(tmp_path)
    assert stored.startswith(PREFIX) and not _files_hold(tmp_path, NOTE)
    assert fernet.decrypt_bytes(stored) == stored  # not a Fernet token any more: it would have been decrypted


def test_a_payload_that_does_not_open_is_set_aside_and_kept_while_the_rest_goes_on(tmp_path: Path, caplog) -> None:
    """The key file lost or replaced: the sealed outcome can be neither sent nor read, and must not block what is
    queued behind it; it stays in the file for whoever finds the old key."""
    topic, payload, msg_id, channel = _outcome()
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    outbox.append(topic, payload, msg_id, channel)
    outbox.close()
    (tmp_path / OUTBOX_KEY_FILE).unlink()  # a new key is made with the next sealed payload
    _stored_by_an_older_agent(tmp_path, FieldCipher(key_file(tmp_path / "old.key")).encrypt_bytes(payload))

    reopened = Outbox(tmp_path / "outbox.sqlite3")  # the Fernet row does not open either: the agent still starts
    reopened.append(topic, b'{"n": 1}', "bulk-1", "features")
    try:
        assert [row.msg_id for row in reopened.take()] == ["bulk-1"]
        assert [row.msg_id for row in reopened.take()] == []  # set aside, not offered again
        assert len(reopened.unopened) == 2 and reopened.depth() == 3
    finally:
        reopened.close()
    assert "does not open with the outbox key" in caplog.text and "does not decrypt" in caplog.text
    stored = _stored_payloads(tmp_path)
    assert stored[0].startswith(PREFIX) and stored[1].startswith(b"fernet:")  # kept as they were


@pytest.mark.mqtt
def test_the_cloud_receives_the_note_in_plain_text(tmp_path: Path) -> None:
    topic, payload, msg_id, channel = _outcome(unique_prefix())
    collector = Collector(SHARED_BROKER, topic)
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    outbox.append(topic, payload, msg_id, channel)
    link = Link(outbox, SHARED_BROKER)
    try:
        wait_for(lambda: collector.payloads() and outbox.depth() == 0, what="the outcome sent and acknowledged")
    finally:
        link.close()
        collector.close()
        outbox.close()

    [received] = collector.payloads()
    assert received == payload
    assert json.loads(received)["outcomes"][0]["notes"] == NOTE
