"""The connection converted owners share with the sqlite-utils code not yet converted: one transaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, text

from cloud.data import keys
from cloud.data.connections import connection_of, in_transaction, write_transaction
from cloud.storage import connect, open_database


def _row(key_id: str) -> dict:
    return {"key_id": key_id, "name": key_id, "role": "viewer", "secret_hash": "x", "created_at": "t"}


def test_an_owner_write_and_a_sqlite_utils_write_commit_or_roll_back_together(tmp_path: Path) -> None:
    db = open_database(tmp_path / "iotsphere.db")
    with pytest.raises(RuntimeError), write_transaction(db) as connection:
        keys.add(connection, _row("owner"))
        db["api_keys"].insert(_row("legacy"))
        raise RuntimeError("the change fails after both writes")
    assert db["api_keys"].count == 0

    with write_transaction(db) as connection:
        keys.add(connection, _row("owner"))
        db["api_keys"].insert(_row("legacy"))
        assert connection is connection_of(db)
    other = connect(tmp_path / "iotsphere.db")  # another process's view: both committed
    assert sorted(row["key_id"] for row in other["api_keys"].rows) == ["legacy", "owner"]


def test_the_shared_connection_neither_commits_nor_closes_the_database(tmp_path: Path) -> None:
    db = open_database(tmp_path / "iotsphere.db")
    db.conn.execute("BEGIN IMMEDIATE")
    keys.add(connection_of(db), _row("uncommitted"))
    connection_of(db).execute(select(keys.api_keys)).all()
    db.conn.execute("ROLLBACK")

    assert db["api_keys"].count == 0
    assert db.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.postgres
def test_on_postgresql_write_transactions_commit_roll_back_and_nest_and_reads_leave_nothing_open(postgres_url) -> None:
    db, other = open_database(postgres_url), open_database(postgres_url)
    with pytest.raises(RuntimeError), write_transaction(db) as connection:
        keys.add(connection, _row("rolled back"))
        raise RuntimeError("the change fails")
    with write_transaction(db) as connection:
        keys.add(connection, _row("outer"))
        with pytest.raises(RuntimeError), write_transaction(db) as inner:  # a savepoint
            keys.add(inner, _row("inner"))
            raise RuntimeError("the inner change fails")
        assert in_transaction(db) and not in_transaction(other)
        assert connection_of(other).execute(select(keys.api_keys.c.key_id)).scalars().all() == []  # not yet
    assert not in_transaction(db)
    assert connection_of(other).execute(select(keys.api_keys.c.key_id)).scalars().all() == ["outer"]

    pid = connection_of(db).execute(text("SELECT pg_backend_pid()")).scalar()
    connection_of(db).execute(select(keys.api_keys)).all()  # a read outside a write transaction
    state = text("SELECT state FROM pg_stat_activity WHERE pid = :pid")
    assert connection_of(other).execute(state, {"pid": pid}).scalar() == "idle"  # not "idle in transaction"
    db.close()
    other.close()
