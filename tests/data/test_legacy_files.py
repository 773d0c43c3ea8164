"""A database file made by the releases before the data layer opens in this one with every row kept, stamped at
the Alembic baseline; one left at an older legacy step first runs the steps it lacks."""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

from cloud.data.legacy import MIGRATIONS
from cloud.data.migrations import HEAD
from cloud.storage import open_database
from tests.data.conftest import fill_every_table, legacy_file
from tests.data.schema_dump import rows_of_every_table, sqlite_schema

LAST_LEGACY_STEP = MIGRATIONS[-1][0]
FIXTURE = Path(__file__).parent / "fixtures" / "release-before-data-layer.db.gz"


def _alembic_version(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchall()


def _new_file_schema(folder: Path) -> dict:
    open_database(folder / "iotsphere.db").conn.close()
    with sqlite3.connect(folder / "iotsphere.db") as conn:
        return sqlite_schema(conn)


def _kept(after: dict, before: dict) -> bool:
    """Every row the file held is still there, and the tables later revisions added start empty."""
    return {table: after[table] for table in before} == before and not any(
        rows for table, rows in after.items() if table not in before
    )


def test_the_file_the_release_before_made_opens_with_every_row(tmp_path: Path) -> None:
    """``fixtures/release-before-data-layer.db.gz``: made by ``cloud.storage.open_database`` as of commit ddccd48 (the
    last before the data layer; its ``cloud/storage.py`` loaded from ``git show``), then ``fill_every_table``, then
    VACUUM. Unlike the files built here from ``cloud.data.legacy``, it cannot change with that module."""
    path = tmp_path / "cloud" / "iotsphere.db"
    path.parent.mkdir()
    path.write_bytes(gzip.decompress(FIXTURE.read_bytes()))
    with sqlite3.connect(path) as conn:
        before = rows_of_every_table(conn)
    assert len(before) == 39 and all(before.values())  # every table of legacy step 21, each with rows

    open_database(path).conn.close()

    with sqlite3.connect(path) as conn:
        assert _kept(rows_of_every_table(conn), before)
        assert sqlite_schema(conn) == _new_file_schema(tmp_path / "new")
    assert _alembic_version(path) == [(HEAD,)]


def test_a_file_of_the_last_legacy_schema_keeps_every_row_and_is_stamped(tmp_path: Path) -> None:
    path = legacy_file(tmp_path / "cloud" / "iotsphere.db", LAST_LEGACY_STEP)
    fill_every_table(path)
    with sqlite3.connect(path) as conn:
        before = rows_of_every_table(conn)
    assert all(before.values()), [table for table, rows in before.items() if not rows]

    open_database(path).conn.close()

    with sqlite3.connect(path) as conn:
        assert _kept(rows_of_every_table(conn), before)
        assert sqlite_schema(conn) == _new_file_schema(path.parent.parent / "new")
    assert _alembic_version(path) == [(HEAD,)]


def test_a_file_at_an_older_legacy_step_runs_the_steps_it_lacks_then_is_stamped(tmp_path: Path) -> None:
    path = legacy_file(tmp_path / "cloud" / "iotsphere.db", 15)
    fill_every_table(path)
    with sqlite3.connect(path) as conn:
        counts = {table: len(rows) for table, rows in rows_of_every_table(conn).items() if table != "schema_migrations"}

    open_database(path).conn.close()

    with sqlite3.connect(path) as conn:
        after = {table: len(rows) for table, rows in rows_of_every_table(conn).items()}
        steps = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        schema = sqlite_schema(conn)
    assert {table: after[table] for table in counts} == counts  # step 16 on: new tables, no row dropped
    assert steps == [version for version, _ in MIGRATIONS]
    assert schema == _new_file_schema(tmp_path / "new")
    assert _alembic_version(path) == [(HEAD,)]
