"""The test run on PostgreSQL (``IOTSPHERE_TEST_DATABASE=postgresql``, ``make test-postgres``).

Every test that opens the cloud's database through ``CloudConfig`` (``config.database_url``) opens PostgreSQL:
``IOTSPHERE_DATABASE_URL`` names a schema of the machine's ``test`` database made for this run, so two runs never
share a table. A test gets that schema emptied (rows deleted, sequences restarted, the rows the migrations seed
put back), as a new SQLite file is empty, without paying for a migration per test. A test that uses a fixture of
module scope shares the database with that fixture, as on SQLite it shares its file: its module gets a schema of
its own, not emptied between its tests. Processes a test starts (``cloud serve``, the CLI) inherit the variable.

On PostgreSQL the field key is ``IOTSPHERE_FIELD_KEY`` (``cloud.crypto_fields``): the run sets one.

Tests that read the SQLite file itself are marked ``sqlite_only`` and are deselected in this run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, text

from cloud.config import CloudConfig
from cloud.data import engine as engines
from cloud.data.postgres import dispose_engines
from cloud.storage import open_database

#: ``IOTSPHERE_TEST_DATABASE`` says which database the storage tests open
ENABLED = os.environ.get("IOTSPHERE_TEST_DATABASE", "sqlite") == "postgresql"
#: the machine's PostgreSQL (trust authentication, database ``test``)
SERVER = "postgresql://postgres@127.0.0.1:5432/test"
_RUN = uuid.uuid4().hex[:10]


def schema_url(schema: str) -> str:
    """The database URL whose connections work in ``schema`` (libpq's ``options``, URL-encoded)."""
    return f"{SERVER}?options=-csearch_path%3D{schema}"


class Schema:
    """A schema at the newest revision, with what the migrations seeded, to empty between tests."""

    def __init__(self, admin: Engine, name: str) -> None:
        self.admin, self.name, self.url = admin, name, schema_url(name)
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {name}"))
        open_database(self.url).close()  # Alembic builds it
        with admin.begin() as connection:
            tables = connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = :schema AND tablename != 'alembic_version'"),
                {"schema": name},
            ).scalars()
            self.tables = sorted(tables)
            self.sequences = (
                connection.execute(
                    text("SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = :schema"),
                    {"schema": name},
                )
                .scalars()
                .all()
            )
            self.seeded = {
                table: rows
                for table in self.tables
                if (rows := [dict(row) for row in connection.execute(text(f"SELECT * FROM {name}.{table}")).mappings()])
            }

    def empty(self) -> None:
        """Every table as the migrations left it: rows deleted (the triggers off, as for a restore), sequences
        restarted, the seeded rows put back. A DELETE of a test's few rows costs milliseconds where a TRUNCATE of
        every table costs a second. Waits at most 10 s for a lock: a test that left a transaction open fails the
        next one loudly rather than hanging it."""
        dispose_engines()
        with self.admin.begin() as connection:
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            connection.execute(text("SET LOCAL session_replication_role = replica"))
            for table in self.tables:
                connection.execute(text(f"DELETE FROM {self.name}.{table}"))
            for sequence in self.sequences:
                connection.execute(text(f"ALTER SEQUENCE {self.name}.{sequence} RESTART"))
            for table, rows in self.seeded.items():
                columns = list(rows[0])
                connection.execute(
                    text(
                        f"INSERT INTO {self.name}.{table} ({', '.join(columns)}) "
                        f"VALUES ({', '.join(':' + column for column in columns)})"
                    ),
                    rows,
                )

    def copy_rows(self, source: Schema, tables: Iterable[str]) -> None:
        """The rows of ``tables`` in ``source`` (a schema at the same revision) copied into this one, in PostgreSQL."""
        with self.admin.begin() as connection:
            for table in tables:
                connection.execute(text(f"INSERT INTO {self.name}.{table} SELECT * FROM {source.name}.{table}"))

    def drop(self) -> None:
        dispose_engines()
        with self.admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {self.name} CASCADE"))


def admin_engine() -> Engine:
    admin = engines.create(SERVER)
    try:
        with admin.connect():
            pass
    except Exception as exc:
        admin.dispose()
        pytest.exit(
            f"IOTSPHERE_TEST_DATABASE=postgresql, but PostgreSQL is not reachable at {SERVER} "
            f"({str(exc).splitlines()[0]}): start it (Debian: apt-get install postgresql && service postgresql start)",
            returncode=2,
        )
    return admin


def new_schema(admin: Engine, scope: str) -> Schema:
    return Schema(admin, f"t{_RUN}_{scope}_{uuid.uuid4().hex[:6]}")


@contextmanager
def environment(url: str) -> Iterator[None]:
    """``IOTSPHERE_DATABASE_URL`` set to ``url`` for the block (and the processes started in it)."""
    before = os.environ.get("IOTSPHERE_DATABASE_URL")
    os.environ["IOTSPHERE_DATABASE_URL"] = url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("IOTSPHERE_DATABASE_URL", None)
        else:
            os.environ["IOTSPHERE_DATABASE_URL"] = before


def shares_a_wider_fixture(item: pytest.Item) -> bool:
    """Whether the test uses a fixture of the project's (under tests/) whose scope is wider than the test's but
    narrower than the run: that fixture's database must outlive the test."""
    definitions = getattr(item, "_fixtureinfo", None)
    if definitions is None:
        return False
    for name, fixturedefs in definitions.name2fixturedefs.items():
        fixturedef = fixturedefs[-1]
        if name.startswith("_postgres"):  # this run's own
            continue
        if fixturedef.scope in ("module", "class", "package") and fixturedef.baseid.startswith("tests"):
            return True
    return False


def field_key() -> str:
    return Fernet.generate_key().decode("ascii")


def database_at(path: Path) -> str | Path:
    """What a test opens where it would open the SQLite file ``path``: that file, or on PostgreSQL the test's
    schema (``IOTSPHERE_DATABASE_URL``, set for the test)."""
    return os.environ["IOTSPHERE_DATABASE_URL"] if ENABLED else path


def sqlite_files(config: CloudConfig) -> list[Path]:
    """The SQLite file and its WAL, for tests that check what reaches the disk; none on PostgreSQL, whose storage
    is the server's (those tests check the stored values instead)."""
    if ENABLED:
        return []
    return sorted(config.data_dir.glob(config.database_path.name + "*"))
