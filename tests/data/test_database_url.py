"""``IOTSPHERE_DATABASE_URL``: a SQLite URL moves the database file; a PostgreSQL one runs the cloud there (migrated
once however many processes open it); any other is refused in one line that never repeats the password."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from cloud.config import CloudConfig
from cloud.data.connections import connection_of
from cloud.data.migrations import HEAD
from cloud.data.postgres import PostgresDatabase
from cloud.data.schema import revision
from cloud.observability.health import database_checks
from cloud.storage import open_database
from iotsphere.cli import main


def test_unset_means_the_file_in_the_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IOTSPHERE_DATABASE_URL", raising=False)
    config = CloudConfig(data_dir=tmp_path / "cloud")

    assert config.database_path == tmp_path / "cloud" / "iotsphere.db"
    assert config.database_url == f"sqlite:///{tmp_path}/cloud/iotsphere.db"


def test_a_sqlite_url_names_the_file_the_cloud_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTSPHERE_DATABASE_URL", f"sqlite:///{tmp_path}/elsewhere/cloud.db")
    config = CloudConfig(data_dir=tmp_path / "cloud")

    open_database(config.database_url).close()

    assert config.database_path == tmp_path / "elsewhere" / "cloud.db"
    assert config.database_path.exists() and not (tmp_path / "cloud" / "iotsphere.db").exists()


def test_a_database_the_cloud_does_not_run_on_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTSPHERE_DATABASE_URL", "mysql://iotsphere:hunter2@127.0.0.1/cloud")

    with pytest.raises(ValueError, match="names a mysql database: the cloud runs on SQLite and PostgreSQL") as refused:
        CloudConfig()
    assert "hunter2" not in str(refused.value)


@pytest.mark.postgres
def test_a_postgresql_url_opens_postgresql_at_the_head_migrated_once(postgres_url: str) -> None:
    opened: list[PostgresDatabase] = []
    threads = [threading.Thread(target=lambda: opened.append(open_database(postgres_url))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(opened) == 3 and all(isinstance(db, PostgresDatabase) for db in opened)
    versions = connection_of(opened[0]).execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == [HEAD]  # three processes opening at once: one migrated, under the advisory lock
    for db in opened:
        db.close()


@pytest.mark.postgres
def test_cloud_init_on_a_postgresql_url_builds_the_cloud_there(tmp_path: Path, postgres_url: str, monkeypatch) -> None:
    monkeypatch.setenv("IOTSPHERE_DATABASE_URL", postgres_url)
    monkeypatch.setenv("IOTSPHERE_KEY_PASSPHRASE", "pass")

    result = CliRunner().invoke(main, ["cloud", "init", "--data-dir", str(tmp_path / "cloud")])

    assert result.exit_code == 0, result.output
    assert not (tmp_path / "cloud" / "iotsphere.db").exists()
    assert CloudConfig(data_dir=tmp_path / "cloud").initialised
    db = open_database(postgres_url)
    assert revision(connection_of(db)) == HEAD
    db.close()


def test_an_unreachable_postgresql_is_reported_without_its_password() -> None:
    [database, migrations] = database_checks("postgresql://iotsphere:hunter2@127.0.0.1:9/cloud")

    assert not database.ok and not migrations.ok
    assert "hunter2" not in database.detail and "127.0.0.1:9" in database.detail


@pytest.mark.parametrize("url", ["sqlite://", "not a url"])
def test_a_url_that_names_no_file_is_an_error_naming_the_variable(url: str, monkeypatch) -> None:
    monkeypatch.setenv("IOTSPHERE_DATABASE_URL", url)

    with pytest.raises(ValueError, match="IOTSPHERE_DATABASE_URL"):
        CloudConfig()
