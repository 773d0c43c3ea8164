"""The ``audit`` owner's queries on SQLite and PostgreSQL, and the append-only rule both dialects enforce."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from cloud.data import audit


def _entry(entry_id: int, actor: str = "cli:alice", action: str = "admin.create-key") -> dict:
    return {
        "id": entry_id,
        "at": f"2026-01-01T00:00:0{entry_id}.000000Z",
        "actor": actor,
        "action": action,
        "target": f"key{entry_id}",
        "details_json": "{}",
        "prev_hash": f"{entry_id - 1:064d}",
        "hash": f"{entry_id:064d}",
    }


def _checkpoint(count: int) -> dict:
    return {"count": count, "head_hash": f"{count:064d}", "at": f"2026-01-0{count}", "keyid": "k", "signature": "s"}


def test_the_head_is_the_newest_entry_and_entries_page_by_id(owner_connection: Connection) -> None:
    assert audit.locked_head(owner_connection) is None
    for entry_id, actor, action in ((1, "cli:alice", "a"), (2, "key:b", "a"), (3, "cli:alice", "b")):
        audit.append(owner_connection, _entry(entry_id, actor, action))

    assert dict(audit.locked_head(owner_connection)) == {"id": 3, "hash": f"{3:064d}"}
    assert [row["id"] for row in audit.entries(owner_connection, 0, 2)] == [1, 2]
    assert [row["id"] for row in audit.entries(owner_connection, 1, 10)] == [2, 3]
    assert [row["id"] for row in audit.entries(owner_connection, 0, 10, actor="cli:alice")] == [1, 3]
    assert [row["id"] for row in audit.entries(owner_connection, 0, 10, actor="cli:alice", action="b")] == [3]
    assert [dict(row) for row in audit.chain(owner_connection)] == [
        _entry(1, "cli:alice", "a"),
        _entry(2, "key:b", "a"),
        _entry(3, "cli:alice", "b"),
    ]


def test_checkpoints_are_listed_in_the_order_stored_without_their_row_id(owner_connection: Connection) -> None:
    audit.add_checkpoint(owner_connection, _checkpoint(5))
    audit.add_checkpoint(owner_connection, _checkpoint(2))

    assert [dict(row) for row in audit.checkpoints(owner_connection)] == [_checkpoint(5), _checkpoint(2)]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'x' WHERE id = 1",
        "DELETE FROM audit_log WHERE id = 1",
        "UPDATE audit_checkpoints SET count = 9",
        "DELETE FROM audit_checkpoints",
    ],
)
def test_the_database_refuses_to_change_or_remove_history(owner_connection: Connection, statement: str) -> None:
    audit.append(owner_connection, _entry(1))
    audit.add_checkpoint(owner_connection, _checkpoint(1))

    with pytest.raises(DBAPIError, match="append-only"), owner_connection.begin_nested():
        owner_connection.execute(text(statement))

    assert [row["actor"] for row in audit.entries(owner_connection, 0, 10)] == ["cli:alice"]
    assert [row["count"] for row in audit.checkpoints(owner_connection)] == [1]


@pytest.mark.postgres
def test_on_postgresql_a_second_appender_waits_for_the_head_and_readers_do_not(
    _owner_databases: dict[str, Callable[[], Engine]],
) -> None:
    engine = _owner_databases["postgresql"]()
    with engine.connect() as first, engine.connect() as second:
        holding, waiting = first.begin(), second.begin()
        try:
            audit.locked_head(first)
            second.execute(text("SET LOCAL lock_timeout = '200ms'"))
            assert audit.entries(second, 0, 10) == []

            with pytest.raises(OperationalError, match="lock timeout"):
                audit.locked_head(second)
        finally:
            waiting.rollback()
            holding.rollback()
