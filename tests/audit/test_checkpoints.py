"""Signed checkpoints catch what the hash chain alone cannot: truncation, and a rewrite with every hash recomputed.

Everything runs on the test's database (a SQLite file, or PostgreSQL) through the real ``iotsphere admin audit``
commands; tampering is done the way someone holding the database would do it, past its append-only triggers
(``tests.rows.tampering``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlite_utils
from click.testing import CliRunner, Result
from prometheus_client import REGISTRY
from sqlalchemy import text

from cloud.api.roles import Role
from cloud.audit import GENESIS_HASH, AuditLog, entry_hash
from cloud.audit_checkpoints import AuditCheckpoints, AuditCheckpointWorker, Checkpoint
from cloud.config import PASSPHRASE_ENV, CloudConfig
from cloud.observability.metrics import AUDIT_CHAIN_OK
from cloud.releases import keystore, tuf_repo
from cloud.storage import open_database
from iotsphere.cli import main
from shared.signing import generate_private_key, key_id, public_key_hex, sign
from tests.api.conftest import auth
from tests.private_broker import free_port
from tests.rows import insert_row, tampering

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def keyed(config: CloudConfig) -> CloudConfig:
    keystore.create_keys(config.keys_dir, PASSPHRASE)
    return config


def _run(config: CloudConfig, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--data-dir", str(config.data_dir)], env={PASSPHRASE_ENV: PASSPHRASE})


def _record(db: sqlite_utils.Database, count: int) -> None:
    log = AuditLog(db)
    for n in range(count):
        log.record("cli:test", "models.promote", f"model/{n}", {"n": n})


def _checkpoint(config: CloudConfig) -> None:
    result = _run(config, "admin", "audit", "checkpoint")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Signed checkpoint: ")


def _tamper(config: CloudConfig, *statements: str) -> None:
    db = open_database(config.database_url)
    try:
        with tampering(db) as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        db.close()


def _rewrite_from(config: CloudConfig, entry_id: int, target: str) -> None:
    """Change one entry's target and recompute its hash and every hash after it: the chain holds again."""
    db = open_database(config.database_url)
    try:
        with tampering(db) as connection:
            connection.execute(text("UPDATE audit_log SET target = :t WHERE id = :id"), {"t": target, "id": entry_id})
            prev = connection.execute(text("SELECT hash FROM audit_log WHERE id = :id"), {"id": entry_id - 1}).first()
            prev_hash = prev.hash if prev else GENESIS_HASH
            rows = connection.execute(text("SELECT * FROM audit_log WHERE id >= :id ORDER BY id"), {"id": entry_id})
            for row in rows.mappings().all():
                details = json.loads(row["details_json"])
                digest = entry_hash(
                    row["id"], row["at"], row["actor"], row["action"], row["target"], details, prev_hash
                )
                connection.execute(
                    text("UPDATE audit_log SET prev_hash = :prev, hash = :hash WHERE id = :id"),
                    {"prev": prev_hash, "hash": digest, "id": row["id"]},
                )
                prev_hash = digest
    finally:
        db.close()


def test_a_clean_log_with_checkpoints_verifies(keyed: CloudConfig, db: sqlite_utils.Database) -> None:
    _record(db, 5)
    _checkpoint(keyed)
    _record(db, 2)
    _checkpoint(keyed)

    result = _run(keyed, "admin", "audit", "verify")

    assert result.exit_code == 0, result.output
    assert result.output.startswith("9 entries verified; head #9 ")  # each checkpoint asked for is audited
    assert "2 signed checkpoint(s) hold; the newest is the checkpoint of " in result.output


def test_deleting_the_newest_entries_fails_verify(keyed: CloudConfig, db: sqlite_utils.Database) -> None:
    _record(db, 6)
    _checkpoint(keyed)
    _tamper(keyed, "DELETE FROM audit_log WHERE id > 4")

    result = _run(keyed, "admin", "audit", "verify")

    assert AuditLog(db).verify().ok  # the chain alone still holds: this is what checkpoints are for
    assert result.exit_code == 1
    assert "the log was truncated: the checkpoint of " in result.output
    assert "(6 entries) signed 6 entries, the log now has 4" in result.output


def test_editing_a_row_and_recomputing_every_hash_after_it_fails_verify(
    keyed: CloudConfig, db: sqlite_utils.Database
) -> None:
    _record(db, 3)
    _checkpoint(keyed)
    _record(db, 3)
    _checkpoint(keyed)
    _rewrite_from(keyed, 2, "model/innocent")

    result = _run(keyed, "admin", "audit", "verify")
    refused = _run(keyed, "admin", "audit", "checkpoint")

    assert AuditLog(db).verify().ok  # the recomputed chain holds on its own
    assert result.exit_code == 1
    assert result.output.count("were rewritten: they no longer hash to the head") == 2
    assert "entries up to #3 were rewritten" in result.output
    assert refused.exit_code == 1 and "not signed, the audit log fails verification" in refused.output
    assert len(AuditCheckpoints(db).all()) == 2  # the tampered log was not blessed


def test_an_exported_copy_catches_truncation_of_both_entries_and_checkpoints(
    keyed: CloudConfig, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    _record(db, 3)
    _checkpoint(keyed)
    _record(db, 3)
    _checkpoint(keyed)
    exported = tmp_path / "elsewhere" / "checkpoints.json"
    export = _run(keyed, "admin", "audit", "export-checkpoints", "--out", str(exported))
    _tamper(keyed, "DELETE FROM audit_log WHERE id > 3", "DELETE FROM audit_checkpoints WHERE count > 3")

    database_only = _run(keyed, "admin", "audit", "verify")
    with_copy = _run(keyed, "admin", "audit", "verify", "--checkpoints", str(exported))

    assert export.exit_code == 0 and export.output == f"Wrote 2 checkpoint(s) to {exported}.\n"
    assert exported.stat().st_mode & 0o077 == 0
    assert database_only.exit_code == 0, database_only.output  # what is left is consistent
    assert with_copy.exit_code == 1
    assert "1 checkpoint(s) of the exported copy are missing from the database" in with_copy.output
    assert "(7 entries) signed 7 entries, the log now has 3" in with_copy.output  # the first's entry is #4


def test_a_checkpoint_not_signed_by_the_audit_key_fails(keyed: CloudConfig, db: sqlite_utils.Database) -> None:
    _record(db, 2)
    _checkpoint(keyed)
    _tamper(keyed, "DELETE FROM audit_log WHERE id = 2", "DELETE FROM audit_checkpoints")
    forger = generate_private_key()
    head = AuditLog(db).verify()
    forged = Checkpoint(
        count=1, head_hash=head.head_hash, at="2030-01-01T00:00:00.000000Z", keyid=key_id(forger), signature=""
    )
    forged = forged.model_copy(update={"signature": sign(forger, forged.signed_bytes())})
    insert_row(db, "audit_checkpoints", forged.model_dump(include={"count", "head_hash", "at", "keyid", "signature"}))

    result = _run(keyed, "admin", "audit", "verify")

    assert result.exit_code == 1
    assert "(1 entries) is not signed by an audit key of this keystore" in result.output


def test_an_exported_file_that_is_not_one_is_a_clear_error(
    keyed: CloudConfig, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text('{"type": "something else"}')

    result = _run(keyed, "admin", "audit", "verify", "--checkpoints", str(junk))

    assert result.exit_code == 1
    assert f"{junk} is not an export of audit checkpoints" in result.output


def test_a_keystore_made_before_the_audit_key_gets_one_and_a_wrong_passphrase_none(
    keyed: CloudConfig, db: sqlite_utils.Database
) -> None:
    for path in (keystore.key_path(keyed.keys_dir, keystore.AUDIT), keystore.audit_public_key_path(keyed.keys_dir)):
        path.unlink()

    wrong = CliRunner().invoke(
        main, ["admin", "audit", "checkpoint", "--data-dir", str(keyed.data_dir)], env={PASSPHRASE_ENV: "wrong"}
    )
    assert wrong.exit_code == 1 and "wrong passphrase" in wrong.output
    assert not keystore.key_path(keyed.keys_dir, keystore.AUDIT).exists()

    _checkpoint(keyed)
    key = keystore.load_private_key(keyed.keys_dir, keystore.AUDIT, PASSPHRASE)
    assert keystore.audit_public_key(keyed.keys_dir) == key.public_key()
    assert key.private_bytes_raw() not in keystore.key_path(keyed.keys_dir, keystore.AUDIT).read_bytes()


def test_the_serve_worker_signs_on_start_and_stays_idle_without_a_passphrase(
    keyed: CloudConfig, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(db, 4)
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    assert not AuditCheckpointWorker(keyed).ready()

    worker = AuditCheckpointWorker(keyed, passphrase=PASSPHRASE, interval=3600)
    with pytest.raises(keystore.WrongPassphrase):
        AuditCheckpointWorker(keyed, passphrase="wrong").ready()
    assert worker.ready()
    worker.step(db)

    [checkpoint] = AuditCheckpoints(db).all()
    assert (checkpoint.count, checkpoint.head_hash) == (4, AuditLog(db).verify().head_hash)
    assert (
        REGISTRY.get_sample_value("iotsphere_audit_chain_ok", {"worker": "audit-checkpoints"}) == 1
    )  # as /metrics exports it

    _rewrite_from(keyed, 2, "changed outside the cloud")  # a rewritten chain: it no longer matches the checkpoint
    worker.step(db)
    try:
        assert REGISTRY.get_sample_value("iotsphere_audit_chain_ok", {"worker": "audit-checkpoints"}) == 0
        assert len(AuditCheckpoints(db).all()) == 1
    finally:  # the gauge is this process's: a later test's scrape must not see this test's failed chain
        AUDIT_CHAIN_OK.remove(worker.name)


def test_admins_sign_export_and_verify_checkpoints_over_http(
    keyed: CloudConfig,
    db: sqlite_utils.Database,
    http: httpx.Client,
    tokens: dict[Role, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = auth(tokens[Role.ADMIN])
    _record(db, 3)
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    unsigned = http.post("/api/audit/checkpoints", headers=admin)
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)

    entries = AuditLog(db).verify().checked  # with the keys' own entries, if key creation is audited
    signed = http.post("/api/audit/checkpoints", headers=admin)
    operator = http.post("/api/audit/checkpoints", headers=auth(tokens[Role.OPERATOR]))
    exported = http.get("/api/audit/checkpoints", headers=admin)
    _tamper(keyed, f"DELETE FROM audit_log WHERE id > {entries - 1}")
    verified = http.get("/api/audit/verify", headers=admin).json()

    assert unsigned.status_code == 503 and PASSPHRASE_ENV in unsigned.json()["detail"]
    assert signed.status_code == 200 and signed.json()["count"] == entries
    assert operator.status_code == 403
    assert exported.json()["checkpoints"] == [signed.json()]
    assert exported.json()["public_keys"] == [keystore.audit_public_key_path(keyed.keys_dir).read_text()]
    assert (verified["ok"], verified["checkpoints"]) == (False, 1)
    assert f"signed {entries} entries, the log now has {entries - 1}" in verified["problems"][0]


def test_cloud_serve_signs_checkpoints_on_its_schedule(keyed: CloudConfig, db: sqlite_utils.Database) -> None:
    _record(db, 2)
    command = [str(Path(sys.executable).parent / "iotsphere"), "cloud", "serve", "--port", str(free_port())]
    command += ["--data-dir", str(keyed.data_dir), "--no-ingest", "--no-publisher", "--no-training", "--no-rollouts"]
    env = {**os.environ, PASSPHRASE_ENV: PASSPHRASE, "IOTSPHERE_AUDIT_CHECKPOINT_INTERVAL": "0.2"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(AuditCheckpoints(db).all()) < 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == 0, stderr
    assert "audit checkpoint signed: 2 entries" in stderr
    checkpoints = AuditCheckpoints(db).all()
    assert len(checkpoints) >= 3 and {c.count for c in checkpoints} == {2}
    assert _run(keyed, "admin", "audit", "verify").exit_code == 0


def test_a_replaced_audit_pub_is_caught_with_the_passphrase_or_an_exported_copy(
    keyed: CloudConfig, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    _record(db, 4)
    _checkpoint(keyed)
    exported = tmp_path / "checkpoints.json"
    _run(keyed, "admin", "audit", "export-checkpoints", "--out", str(exported))
    # someone holding the data folder rewrites an entry, then signs the result with a key of their own
    _rewrite_from(keyed, 2, "model/innocent")
    _tamper(keyed, "DELETE FROM audit_checkpoints")
    forger = generate_private_key()
    keystore.audit_public_key_path(keyed.keys_dir).write_text(public_key_hex(forger))
    forged = Checkpoint(
        count=5,  # the 4 entries and the checkpoint's own
        head_hash=AuditLog(db).verify().head_hash,
        at="2030-01-01T00:00:00.000000Z",
        keyid=key_id(forger),
        signature="",
    )
    forged = forged.model_copy(update={"signature": sign(forger, forged.signed_bytes())})
    insert_row(db, "audit_checkpoints", forged.model_dump(include={"count", "head_hash", "at", "keyid", "signature"}))
    args = ["admin", "audit", "verify", "--data-dir", str(keyed.data_dir)]

    on_trust = CliRunner().invoke(main, args, env={PASSPHRASE_ENV: None})
    with_passphrase = _run(keyed, "admin", "audit", "verify")
    with_copy = CliRunner().invoke(main, [*args, "--checkpoints", str(exported)], env={PASSPHRASE_ENV: None})

    assert on_trust.exit_code == 0  # audit.pub alone is taken on trust: what the passphrase and the copy are for
    assert with_passphrase.exit_code == 1
    assert "audit.pub is not the public half of the encrypted audit key" in with_passphrase.output
    assert "(5 entries) is not signed by an audit key of this keystore" in with_passphrase.output
    assert with_copy.exit_code == 1 and "its audit.pub was replaced" in with_copy.output


def test_checkpoints_signed_before_the_audit_key_was_rotated_still_verify(tmp_path: Path) -> None:
    config = CloudConfig(data_dir=tmp_path / "cloud")
    tuf_repo.init_repository(config, PASSPHRASE)
    db = open_database(config.database_url)
    _record(db, 2)
    _checkpoint(config)
    old = keystore.audit_public_key(config.keys_dir)

    rotated = _run(config, "admin", "rotate-key", "audit")
    _record(db, 2)
    _checkpoint(config)
    export = tmp_path / "checkpoints.json"
    _run(config, "admin", "audit", "export-checkpoints", "--out", str(export))
    args = ["admin", "audit", "verify", "--data-dir", str(config.data_dir)]
    with_passphrase = _run(config, "admin", "audit", "verify", "--checkpoints", str(export))
    on_published_keys = CliRunner().invoke(main, args, env={PASSPHRASE_ENV: None})
    signers = {c.keyid for c in AuditCheckpoints(db).all()}
    db.close()

    assert rotated.exit_code == 0 and rotated.output.startswith("New audit key ")
    new = keystore.audit_public_key(config.keys_dir)
    assert new != old
    assert signers == {key_id(old), key_id(new)}
    assert json.loads(export.read_text())["public_keys"] == [public_key_hex(new), public_key_hex(old)]
    assert with_passphrase.exit_code == 0, with_passphrase.output
    assert on_published_keys.exit_code == 0, on_published_keys.output
    assert "2 signed checkpoint(s) hold" in on_published_keys.output
