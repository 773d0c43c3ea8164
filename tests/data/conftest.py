"""Database files as the releases before the data layer built them, with rows in every table; PostgreSQL schemas."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from cloud.data import engine as engines
from cloud.data.legacy import MIGRATIONS
from cloud.data.migrate import upgrade
from cloud.data.postgres import dispose_engines
from cloud.data.times import iso
from cloud.data.urls import sqlite_url
from cloud.storage import open_database

#: the machine's PostgreSQL (trust authentication, database ``test``); each test gets a schema of its own
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

START = datetime(2026, 1, 31, 6, tzinfo=UTC)


def legacy_file(path: Path, through_step: int) -> Path:
    """A cloud database as ``open_database`` made it before the data layer, brought to legacy step ``through_step``
    by the legacy steps themselves (moved, unchanged, from ``cloud/storage.py``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(sqlite3.connect(path))
    db.enable_wal()
    db["schema_migrations"].create({"version": int, "applied_at": str}, pk="version")
    for version, step in MIGRATIONS:
        if version > through_step:
            break
        with db.conn:
            step(db)
            db["schema_migrations"].insert({"version": version, "applied_at": iso(START)})
    db.conn.close()
    return path


def _value(table: str, column: str, declared: str, n: int) -> object:
    """A value its readers and the legacy steps accept: JSON in ``*_json``, stored time text in time columns."""
    if declared != "TEXT":
        return {"INTEGER": n, "REAL": n + 0.5}.get(declared, f"{table}.{column}.{n}".encode())
    if column == "document_json":
        return f'{{"signed": {{"issued_at": "{iso(START)}", "n": {n}}}}}'
    if column.endswith("_json"):
        return f'{{"n": {n}}}'
    if column.endswith(("_at", "_end", "_seen")) or column == "at":
        return iso(START + timedelta(minutes=n))
    return f"{table}.{n}"


def fill_every_table(path: Path, rows_per_table: int = 2) -> None:
    """Rows in every table the file has (one where a CHECK allows no more), each column given a value."""
    conn = sqlite3.connect(path)
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    with conn:
        for table in tables:
            if table == "schema_migrations":
                continue
            columns = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
            for n in range(1, rows_per_table + 1):
                values = [_value(table, name, declared, n) for _, name, declared, *_ in columns]
                try:
                    conn.execute(f'INSERT INTO "{table}" VALUES ({", ".join("?" * len(values))})', values)
                except sqlite3.IntegrityError:  # ingest_probe: CHECK (id = 1) keeps one row
                    assert n > 1, table
    conn.close()


@pytest.fixture
def postgres_schema() -> Iterator[Callable[[], Engine]]:
    """Engines whose connections work in a fresh PostgreSQL schema, dropped with everything in it afterwards."""
    admin = engines.create(POSTGRES_URL)
    try:
        with admin.connect():
            pass
    except OperationalError as exc:
        admin.dispose()
        # a failure, not a skip: CI and the project's machines run PostgreSQL, and a skipped schema test would pass
        # CI without checking the dialect at all
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_URL} ({str(exc).splitlines()[0]}): start it (Debian: "
            "apt-get install postgresql && service postgresql start) or deselect these tests with -m 'not postgres'"
        )
    schema = f"data_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    made: list[Engine] = []

    def engine() -> Engine:
        made.append(engines.create(POSTGRES_URL, connect_args={"options": f"-c search_path={schema}"}))
        return made[-1]

    try:
        yield engine
    finally:
        for each in made:
            each.dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(scope="session")
def _owner_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Callable[[], Engine]]]:
    """One database per dialect at the newest revision, built once per run: the owners' tests share it, each in a
    transaction of its own that is rolled back."""
    made: dict[str, Engine] = {}
    schema = f"owners_{uuid.uuid4().hex[:12]}"

    def sqlite() -> Engine:
        if "sqlite" not in made:
            path = tmp_path_factory.mktemp("owners") / "iotsphere.db"
            open_database(path).conn.close()
            made["sqlite"] = engines.create(sqlite_url(path))
        return made["sqlite"]

    def postgresql() -> Engine:
        if "postgresql" not in made:
            made["postgresql"] = _postgres_schema_engine(schema)
            with made["postgresql"].begin() as connection:
                upgrade(connection)
        return made["postgresql"]

    try:
        yield {"sqlite": sqlite, "postgresql": postgresql}
    finally:
        for name, engine in made.items():
            if name == "postgresql":
                with engine.begin() as connection:
                    connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            engine.dispose()


def _postgres_schema_engine(schema: str) -> Engine:
    admin = engines.create(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} ({str(exc).splitlines()[0]})")
    finally:
        admin.dispose()
    return engines.create(POSTGRES_URL, connect_args={"options": f"-c search_path={schema}"})


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def owner_connection(request: pytest.FixtureRequest, _owner_databases) -> Iterator[Connection]:
    """A connection to a database at the newest revision, on each dialect, inside a transaction rolled back after
    the test: an owner's queries run on both as the cloud runs them (owners never commit; callers do)."""
    engine = _owner_databases[request.param]()
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


@pytest.fixture
def postgres_url(postgres_schema) -> Iterator[str]:
    """The database URL of a fresh, empty PostgreSQL schema (``postgres_schema``, dropped afterwards)."""
    engine = postgres_schema()
    with engine.connect() as connection:
        schema = connection.execute(text("SELECT current_schema()")).scalar()
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    dispose_engines()
