"""A refused outcome's technician notes never rest in plain text in ``dead_letters``, and are never shown.

Real SQLite files: the note's bytes are looked for in the database file and its WAL; the API is served over real
HTTP and the CLI run as a user runs it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlite_utils
from click.testing import CliRunner

from cloud.api.app import create_app
from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.dead_letters import REDACTED, redacted_preview
from cloud.ingest.decode import Rejected, decode
from cloud.ingest.store import DeadLetter, write_batch
from cloud.storage import migrate, open_database
from iotsphere.cli import main
from shared.topics import Up, up_topic
from tests.api.server import ThreadedServer
from tests.ingest.helpers import outcomes, plain_payload

# reads the file's bytes and sets it back to a legacy step
pytestmark = pytest.mark.sqlite_only

NOTE = "tenant Ms Q. Private at flat 4b said the code is 4471"
NOW = datetime(2026, 3, 5, tzinfo=UTC)


def _files_hold(config: CloudConfig, needle: bytes) -> bool:
    return any(
        needle in path.read_bytes()
        for path in config.data_dir.iterdir()
        if path.name.startswith(config.database_path.name)
    )


def _refused_outcome(config: CloudConfig) -> tuple[str, bytes]:
    """A technician's outcome sent on another gateway's topic: refused whole, notes and all."""
    batch = outcomes(gateway="gw1")
    batch = batch.model_copy(update={"outcomes": [batch.outcomes[0].model_copy(update={"notes": NOTE})]})
    topic, payload = up_topic("gw2", Up.OUTCOMES, config.topic_prefix), batch.to_json()
    decoded = decode(topic, payload, config.topic_prefix)
    assert isinstance(decoded, Rejected) and decoded.reason.startswith("gateway-mismatch")
    return topic, payload


def test_a_refused_outcome_rests_encrypted_and_is_shown_redacted(config: CloudConfig, db: sqlite_utils.Database):
    topic, payload = _refused_outcome(config)
    write_batch(db, [], [DeadLetter(topic, payload, "gateway-mismatch: gw2 is not gw1")], NOW)
    token = KeyStore(db).create(Role.OPERATOR, "ops").token

    with ThreadedServer(create_app(config)) as server:
        response = httpx.get(f"{server.base_url}/api/dead-letters", headers={"Authorization": f"Bearer {token}"})
    cli = CliRunner().invoke(main, ["dead-letters", "--json", "--data-dir", str(config.data_dir)])
    db.close()

    assert not _files_hold(config, NOTE.encode())
    assert not _files_hold(config, b"tech-7")
    assert response.status_code == 200, response.text
    [letter] = response.json()
    assert (letter["topic"], letter["payload_bytes"]) == (topic, len(payload))
    shown = json.loads(letter["payload_preview"])
    assert shown["outcomes"][0]["notes"] == shown["outcomes"][0]["technician"] == REDACTED
    assert shown["outcomes"][0]["device_id"] == "h1"  # what went wrong stays visible
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.output)["payload_preview"] == letter["payload_preview"]
    assert NOTE not in response.text + cli.output
    with open_database(config.database_url) as reopened:
        [row] = reopened["dead_letters"].rows
        assert plain_payload(reopened, row["payload"]) == payload  # kept whole, for whoever holds the key


def test_dead_letters_stored_in_plain_text_before_are_encrypted_by_the_migration(tmp_path: Path):
    config = CloudConfig(data_dir=tmp_path / "cloud")
    topic, payload = _refused_outcome(config)
    db = open_database(config.database_url)
    with db.conn:  # as an older cloud wrote them, then back to the schema before migration 20
        db.conn.execute(
            "INSERT INTO dead_letters (topic, payload, reason, received_at) VALUES (?, ?, 'gateway-mismatch', '')",
            (topic, payload),
        )
        db.conn.execute("INSERT INTO dead_letters (topic, payload, reason, received_at) VALUES ('t', 'text', '', '')")
        db.conn.execute("DELETE FROM schema_migrations WHERE version = 20")
    db.close()
    assert _files_hold(config, NOTE.encode())

    db = open_database(config.database_url)
    first, second = db["dead_letters"].rows
    db.close()

    assert not _files_hold(config, NOTE.encode())
    assert first["payload"].startswith(b"fernet:") and second["payload"].startswith(b"fernet:")
    with open_database(config.database_url) as reopened:
        assert plain_payload(reopened, first["payload"]) == payload
        assert plain_payload(reopened, second["payload"]) == b"text"
        assert migrate(reopened) >= 20


def test_payloads_that_are_not_json_are_redacted_by_their_text():
    cut_short = b'{"outcomes": [{"technician": "tech-7", "notes": "the code is 4471, tenant away until'
    not_a_number = b'{"value": NaN, "Notes": "call Ms Q. on 0612", "comments": "said \\"no\\" twice"}'

    assert redacted_preview(cut_short) == f'{{"outcomes": [{{"technician": "{REDACTED}", "notes": "{REDACTED}"'
    assert redacted_preview(not_a_number) == (f'{{"value": NaN, "Notes": "{REDACTED}", "comments": "{REDACTED}"}}')
    assert redacted_preview(b"\xff\xfe not json") == "\ufffd\ufffd not json"


def test_json_is_redacted_at_any_depth_before_the_preview_is_cut():
    payload = json.dumps({"a": [{"b": {"notes": "x" * 600}}], "comments": {"nested": "secret"}}).encode()

    preview = redacted_preview(payload, chars=60)

    assert preview == f'{{"a": [{{"b": {{"notes": "{REDACTED}"}}}}], "comments": "{REDACTED}"}}'[:60]
    assert "x" not in preview and "secret" not in redacted_preview(payload)


def test_a_payload_the_field_key_cannot_open_says_so(config: CloudConfig, db: sqlite_utils.Database):
    with db.conn:
        db.conn.execute(
            "INSERT INTO dead_letters (topic, payload, reason, received_at) VALUES ('t', ?, 'r', '')",
            (b"fernet:not-a-token",),
        )

    cli = CliRunner().invoke(main, ["dead-letters", "--data-dir", str(config.data_dir)])

    assert cli.exit_code == 0, cli.output
    assert "[the payload does not decrypt with the current field key]" in cli.output
