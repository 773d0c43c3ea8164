"""Two processes appending at once to one SQLite file keep one chain: every id once, every link intact."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from cloud.audit import AuditLog
from cloud.storage import connect, open_database
from tests.postgres_run import database_at

_PER_WRITER = 300


def _append(path: str, writer: str, start: multiprocessing.synchronize.Barrier) -> None:
    db = connect(path)
    start.wait(60)  # both processes hold a connection, then race
    log = AuditLog(db)
    for n in range(_PER_WRITER):
        log.record(f"cli:{writer}", "test.append", writer, {"n": n})
    db.close()


def test_two_processes_never_fork_the_chain(tmp_path: Path) -> None:
    path = database_at(tmp_path / "cloud.db")
    open_database(path).close()
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    writers = [context.Process(target=_append, args=(str(path), name, start)) for name in ("a", "b")]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)

    assert [process.exitcode for process in writers] == [0, 0]
    db = open_database(path)
    entries = AuditLog(db).entries(limit=1000)
    result = AuditLog(db).verify()
    db.close()
    assert (result.ok, result.checked) == (True, 2 * _PER_WRITER), result.reason
    assert [e.id for e in entries] == list(range(1, 2 * _PER_WRITER + 1))
    for writer in ("a", "b"):
        assert [e.details["n"] for e in entries if e.actor == f"cli:{writer}"] == list(range(_PER_WRITER))
