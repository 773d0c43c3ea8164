"""The hash chain on the test's database (a SQLite file, or PostgreSQL): it verifies, and an edit, a deletion or a
reordering names its entry."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from cloud.audit import GENESIS_HASH, AuditLog, entry_hash
from cloud.data.connections import in_transaction, write_transaction
from cloud.storage import open_database
from tests.postgres_run import database_at
from tests.rows import execute, tampering


@pytest.fixture
def path(tmp_path: Path) -> str | Path:
    """A database with five entries, closed, so each test opens the file as an intruder would."""
    path = database_at(tmp_path / "cloud.db")
    db = open_database(path)
    log = AuditLog(db)
    for n in range(1, 6):
        log.record(f"cli:user{n % 2}", "admin.create-key", f"key{n}", {"n": n, "role": "viewer"})
    db.close()
    return path


def _tamper(path: str | Path, *statements: str) -> None:
    """Change the database directly, past the append-only triggers, as someone holding it could."""
    db = open_database(path)
    try:
        with tampering(db) as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        db.close()


def _verify(path: str | Path):
    db = open_database(path)
    try:
        return AuditLog(db).verify()
    finally:
        db.close()


def test_an_untouched_chain_verifies_and_links_each_entry_to_the_one_before(path: str | Path) -> None:
    db = open_database(path)
    entries = AuditLog(db).entries()
    result = AuditLog(db).verify()
    db.close()

    assert [e.id for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(entries, entries[1:], strict=False))
    assert (result.ok, result.checked, result.head_id, result.head_hash) == (True, 5, 5, entries[-1].hash)


def test_an_edited_entry_is_named(path: str | Path) -> None:
    _tamper(path, """UPDATE audit_log SET details_json = '{"n": 3, "role": "admin"}' WHERE id = 3""")

    result = _verify(path)

    assert (result.ok, result.broken_id, result.head_id) == (False, 3, 2)
    assert "entry 3 does not match its hash" in result.reason


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(path: str | Path) -> None:
    db = open_database(path)
    third = AuditLog(db).entries(limit=1, since_id=2)[0]
    db.close()
    forged = entry_hash(3, third.at, "cli:mallory", third.action, third.target, third.details, third.prev_hash)
    _tamper(path, f"UPDATE audit_log SET actor = 'cli:mallory', hash = '{forged}' WHERE id = 3")

    result = _verify(path)

    assert (result.ok, result.broken_id) == (False, 4)
    assert "entry 4 does not link to entry 3" in result.reason


def test_a_deleted_entry_is_named_by_the_one_after_it(path: str | Path) -> None:
    _tamper(path, "DELETE FROM audit_log WHERE id = 3")

    result = _verify(path)

    assert (result.ok, result.broken_id, result.checked) == (False, 4, 2)
    assert "entry 4 found where entry 3 belongs" in result.reason


def test_swapped_entries_are_named(path: str | Path) -> None:
    _tamper(
        path,
        "UPDATE audit_log SET id = -2 WHERE id = 2",
        "UPDATE audit_log SET id = 2 WHERE id = 3",
        "UPDATE audit_log SET id = 3 WHERE id = -2",
    )

    result = _verify(path)

    assert (result.ok, result.broken_id) == (False, 2)


def test_the_table_refuses_updates_and_deletes(path: str | Path) -> None:
    db = open_database(path)
    try:
        for statement in ("UPDATE audit_log SET actor = 'x' WHERE id = 1", "DELETE FROM audit_log WHERE id = 5"):
            with pytest.raises(DBAPIError, match="append-only"):
                execute(db, statement)
        assert AuditLog(db).verify().checked == 5
    finally:
        db.close()


def test_a_float_in_details_is_refused_before_anything_is_written(path: str | Path) -> None:
    db = open_database(path)
    try:
        with pytest.raises(ValueError, match="audit details must be JSON without floats"):
            AuditLog(db).record("cli:x", "feedback.outcome", "p1", {"value": 1.5})
        assert AuditLog(db).verify().checked == 5
        assert not in_transaction(db)
    finally:
        db.close()


def test_record_joins_an_open_transaction_and_rolls_back_or_commits_with_it(tmp_path: Path) -> None:
    db: sqlite_utils.Database = open_database(database_at(tmp_path / "cloud.db"))
    try:
        with pytest.raises(LookupError), write_transaction(db):
            AuditLog(db).record("cli:x", "a", "rolled back", {})
            raise LookupError("the change it records failed")
        with write_transaction(db):
            AuditLog(db).record("cli:x", "a", "committed", {})
            assert in_transaction(db)  # still the caller's: nothing is committed before the change is
        assert [e.target for e in AuditLog(db).entries()] == ["committed"]
        assert AuditLog(db).verify().ok
    finally:
        db.close()


def test_entries_filter_and_page(path: str | Path) -> None:
    db = open_database(path)
    log = AuditLog(db)
    try:
        assert [e.id for e in log.entries(actor="cli:user1")] == [1, 3, 5]
        assert [e.id for e in log.entries(limit=2, since_id=2)] == [3, 4]
        assert log.entries(action="models.promote") == []
        with pytest.raises(ValueError, match="limit must be between 1 and 1000"):
            log.entries(limit=0)
    finally:
        db.close()
