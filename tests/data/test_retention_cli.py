"""``iotsphere admin retention`` run for real on a SQLite file and on PostgreSQL: old feature rows and predictions
go (whole day partitions on PostgreSQL), predictions an outcome names stay, a dry run changes nothing, the run is
audited, and fewer than one day is refused; ``cloud serve``'s retention job makes partitions ahead and prunes once a
day."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cloud.config import CloudConfig
from cloud.data import features, predictions
from cloud.data.connections import write_transaction
from cloud.data.partitions import day_partitions
from cloud.retention import DAYS_AHEAD
from cloud.retention_worker import RetentionWorker
from cloud.storage import open_database
from iotsphere.cli import main
from tests.rows import rows_of

TODAY = datetime.now(UTC).date()
#: days rows are made on: two before the cut-off of --keep-days 3, the cut-off's own day, today
DAYS = [TODAY - timedelta(days=10), TODAY - timedelta(days=5), TODAY - timedelta(days=3), TODAY]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str | Path:
    """The data folder's database: its SQLite file, or a fresh PostgreSQL schema (``IOTSPHERE_DATABASE_URL``)."""
    if request.param == "sqlite":
        monkeypatch.delenv("IOTSPHERE_DATABASE_URL", raising=False)
        url = tmp_path / "cloud" / "iotsphere.db"
    else:
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("IOTSPHERE_DATABASE_URL", url)
    db = open_database(url)
    try:
        with write_transaction(db) as connection:
            features.ensure_partitions(connection, DAYS)
            predictions.ensure_partitions(connection, DAYS)
            features.add_feature_rows(connection, [_feature(f"wh-{n}", day) for n in range(3) for day in DAYS])
            predictions.add_predictions(
                connection, [_prediction(f"p-{n}-{day}", day) for n in range(2) for day in DAYS]
            )
            outcome = ("o-1", "wh-1", "technician", _at(TODAY), f"p-0-{DAYS[0]}", *(None,) * 7)
            predictions.add_outcomes(connection, [outcome])
    finally:
        db.close()
    return url


def _at(day: date) -> str:
    return f"{day.isoformat()}T06:00:00.000000Z"


def _feature(device: str, day: date) -> tuple:
    return (device, _at(day), "v1", b"\x00" * 8, None)


def _prediction(prediction_id: str, day: date) -> tuple:
    return (
        prediction_id,
        "champion",
        "wh-1",
        "t",
        "component_failure",
        "m",
        "1",
        "{}",
        1.0,
        _at(day),
        None,
        "gw",
        None,
    )


def _retention(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["admin", "retention", *args, "--data-dir", str(tmp_path / "cloud")])


def _stored(url: str | Path) -> tuple[list[str], list[str], list[dict]]:
    db = open_database(url)
    try:
        return (
            sorted(f"{row['device_id']} {row['window_end'][:10]}" for row in rows_of(db, "features")),
            sorted(row["prediction_id"] for row in rows_of(db, "predictions")),
            rows_of(db, "audit_log"),
        )
    finally:
        db.close()


def test_retention_removes_what_is_older_than_the_days_kept(database: str | Path, tmp_path: Path) -> None:
    before = _stored(database)
    dry = _retention(tmp_path, "--keep-days", "3", "--dry-run")
    after_dry = _stored(database)
    result = _retention(tmp_path, "--keep-days", "3")
    kept_features, kept_predictions, audit = _stored(database)

    assert dry.exit_code == 0, dry.output
    assert after_dry == before
    assert "features: would remove 6 rows older than" in dry.output
    assert result.exit_code == 0, result.output
    assert f"features: removed 6 rows older than {DAYS[2].isoformat()}" in result.output
    assert "predictions: removed 3 rows" in result.output and "kept 1 older rows" in result.output
    assert kept_features == sorted(f"wh-{n} {day}" for n in range(3) for day in DAYS[2:])
    assert kept_predictions == sorted([f"p-0-{DAYS[0]}"] + [f"p-{n}-{day}" for n in range(2) for day in DAYS[2:]])
    [entry] = audit
    details = json.loads(entry["details_json"])
    assert (entry["action"], entry["target"]) == ("admin.retention", "features,predictions")
    assert (details["keep_days"], details["cutoff"]) == (3, DAYS[2].isoformat())
    assert (details["features"]["rows"], details["predictions"]["rows"], details["predictions"]["kept"]) == (6, 3, 1)
    if "postgresql" in str(database):
        old = [f"{table}_p{day:%Y%m%d}" for table in ("features", "predictions") for day in DAYS[:2]]
        assert details["features"]["partitions"] + details["predictions"]["partitions"] == old
        assert all(name in result.output for name in old)
    else:
        assert details["features"]["partitions"] == details["predictions"]["partitions"] == []


def test_fewer_than_one_day_is_refused(database: str | Path, tmp_path: Path) -> None:
    before = _stored(database)
    result = _retention(tmp_path, "--keep-days", "0")

    assert result.exit_code == 2
    assert "--keep-days" in result.output and "0 is not in the range x>=1" in result.output
    assert _stored(database) == before


def test_the_retention_job_makes_partitions_ahead_and_prunes_once_a_day(database: str | Path, tmp_path: Path) -> None:
    worker = RetentionWorker(CloudConfig(data_dir=tmp_path / "cloud"), keep_days=3)
    db = open_database(database)
    try:
        worker.step(db)
        worker.step(db)
        with write_transaction(db) as connection:
            made = sorted(day_partitions(connection, "predictions"))
    finally:
        db.close()
    kept_features, _, audit = _stored(database)

    assert [(entry["actor"], entry["action"]) for entry in audit] == [("jobs:retention", "admin.retention")]
    assert kept_features == sorted(f"wh-{n} {day}" for n in range(3) for day in DAYS[2:])
    if "postgresql" in str(database):
        assert made[-1] == TODAY + timedelta(days=DAYS_AHEAD) and TODAY - timedelta(days=1) in made
    else:
        assert made == []


@pytest.mark.postgres
def test_a_partition_held_by_a_long_read_stops_the_run_audited_and_nothing_else_lost(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IOTSPHERE_DATABASE_URL", postgres_url)
    db = open_database(postgres_url)
    try:
        with write_transaction(db) as connection:
            features.ensure_partitions(connection, DAYS)
            features.add_feature_rows(connection, [_feature("wh-1", day) for day in DAYS])
    finally:
        db.close()
    reader = open_database(postgres_url)
    try:
        with write_transaction(reader) as connection:
            features.count_older(connection, TODAY)  # a read of every partition, its locks held until it ends
            result = _retention(tmp_path, "--keep-days", "3")
    finally:
        reader.close()
    kept_features, _, [entry] = _stored(postgres_url)

    assert result.exit_code == 1
    assert f"features_p{DAYS[0]:%Y%m%d} was not dropped: the table stayed locked for 5s" in result.output
    assert kept_features == sorted(f"wh-1 {day}" for day in DAYS)
    details = json.loads(entry["details_json"])
    assert details["stopped"].startswith("TemporarilyUnavailable")
    assert details["features"] == {"partitions": [], "rows": 0, "kept": 0}
