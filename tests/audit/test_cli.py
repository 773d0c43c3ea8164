"""CLI commands that change state without HTTP write audit entries; ``admin audit`` lists and verifies them."""

from __future__ import annotations

import getpass
import json

import sqlite_utils
from click.testing import CliRunner, Result
from sqlalchemy import text

from cloud.config import CloudConfig
from iotsphere.cli import main
from shared.messages import Prediction
from tests.rows import rows_of, tampering


def _run(config: CloudConfig, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--data-dir", str(config.data_dir)])


def _entries(db: sqlite_utils.Database) -> list[dict]:
    return rows_of(db, "audit_log")


def test_key_commands_record_the_os_user_and_never_the_token(config: CloudConfig, db: sqlite_utils.Database) -> None:
    token = _run(config, "admin", "create-key", "--role", "operator", "--name", "bob").stdout.strip()
    key_id = token.split("_")[1]
    revoked = _run(config, "admin", "revoke-key", key_id)

    assert revoked.exit_code == 0, revoked.output
    created, revoke = _entries(db)
    actor = f"cli:{getpass.getuser()}"
    assert (created["actor"], created["action"], created["target"]) == (actor, "admin.create-key", key_id)
    assert json.loads(created["details_json"]) == {"role": "operator", "name": "bob", "gateway_id": None}
    assert (revoke["actor"], revoke["action"], revoke["target"]) == (actor, "admin.revoke-key", key_id)
    assert token.split("_", 2)[2] not in json.dumps([created, revoke])


def test_a_rating_is_recorded_without_its_comment(
    config: CloudConfig, db: sqlite_utils.Database, prediction: Prediction
) -> None:
    result = _run(config, "feedback", "rate", prediction.prediction_id, "2", "--comments", "customer was rude")

    assert result.exit_code == 0, result.output
    [entry] = _entries(db)
    assert (entry["action"], entry["target"]) == ("feedback.rate", prediction.prediction_id)
    details = json.loads(entry["details_json"])
    assert details["rating"] == 2 and result.output.strip().endswith(details["id"])
    assert "rude" not in json.dumps(entry)


def test_audit_list_and_verify_and_a_tampered_file_fails_verify(config: CloudConfig, db: sqlite_utils.Database) -> None:
    for name in ("ann", "ben", "cat"):
        _run(config, "admin", "create-key", "--role", "viewer", "--name", name)

    listed = _run(config, "admin", "audit", "list", "--action", "admin.create-key", "--since-id", "1")
    verified = _run(config, "admin", "audit", "verify")
    with tampering(db) as connection:
        connection.execute(text("DELETE FROM audit_log WHERE id = 2"))
    tampered = _run(config, "admin", "audit", "verify")

    assert listed.exit_code == 0, listed.output
    assert [line.split()[0] for line in listed.output.splitlines()] == ["ID", "#2", "#3"]
    assert '"name": "ben"' in listed.output
    assert verified.exit_code == 0 and verified.output.startswith("3 entries verified; head #3 ")
    assert tampered.exit_code == 1
    assert "audit log broken at entry 3: entry 3 found where entry 2 belongs" in tampered.output
