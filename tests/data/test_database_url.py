"""``IOTSPHERE_DATABASE_URL``: a SQLite URL moves the database file; a PostgreSQL one is refused, in one line that
says why and never repeats the password, until the services' queries are converted (docs/data-layer.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cloud.config import CloudConfig
from cloud.data.urls import SQLiteOnly
from cloud.storage import open_database
from iotsphere.cli import main

POSTGRES = "postgresql://iotsphere:hunter2@127.0.0.1:5432/test"


def test_unset_means_the_file_in_the_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IOTSPHERE_DATABASE_URL", raising=False)
    config = CloudConfig(data_dir=tmp_path / "cloud")

    assert config.database_path == tmp_path / "cloud" / "iotsphere.db"
    assert config.database_url == f"sqlite:///{tmp_path}/cloud/iotsphere.db"


def test_a_sqlite_url_names_the_file_the_cloud_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTSPHERE_DATABASE_URL", f"sqlite:///{tmp_path}/elsewhere/cloud.db")
    config = CloudConfig(data_dir=tmp_path / "cloud")

    open_database(config.database_path).conn.close()

    assert config.database_path == tmp_path / "elsewhere" / "cloud.db"
    assert config.database_path.exists() and not (tmp_path / "cloud" / "iotsphere.db").exists()


def test_a_postgresql_url_is_refused_by_the_config_and_by_open_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTSPHERE_DATABASE_URL", POSTGRES)

    with pytest.raises(SQLiteOnly, match="query SQLite only") as refused:
        CloudConfig()
    with pytest.raises(SQLiteOnly):
        open_database(POSTGRES)
    assert "hunter2" not in str(refused.value)


def test_cloud_init_on_a_postgresql_url_says_why_and_makes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("IOTSPHERE_DATABASE_URL", POSTGRES)

    result = CliRunner().invoke(main, ["cloud", "init", "--data-dir", str(tmp_path / "cloud")])

    assert result.exit_code == 1
    assert result.output.startswith("Error: IOTSPHERE_DATABASE_URL names a postgresql database")
    assert "alembic -c cloud/data/alembic.ini upgrade head" in result.output and "hunter2" not in result.output
    assert not (tmp_path / "cloud").exists()


@pytest.mark.parametrize("url", ["sqlite://", "not a url"])
def test_a_url_that_names_no_file_is_an_error_naming_the_variable(url: str, monkeypatch) -> None:
    monkeypatch.setenv("IOTSPHERE_DATABASE_URL", url)

    with pytest.raises(ValueError, match="IOTSPHERE_DATABASE_URL"):
        CloudConfig()
