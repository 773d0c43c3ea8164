"""The connection converted owners share with the sqlite-utils code not yet converted: one transaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from cloud.data import keys
from cloud.data.connections import connection_of, write_transaction
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
