"""``iotsphere features`` through click's runner on a real SQLite file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cloud.config import CloudConfig
from cloud.feature_store import FeatureStore
from cloud.storage import iso, open_database
from iotsphere.cli import main
from shared.features import FEATURE_NAMES
from tests.feature_store.conftest import AS_OF, DAY, T0, add_outcome, vector


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    config = CloudConfig(data_dir=tmp_path / "cloud")
    db = open_database(config.database_path)
    store = FeatureStore(db)
    for day in range(4):
        store.store_device_features("wh-1", vector(float(day)), T0 + day * DAY)
    add_outcome(db, "wh-1", T0 + 2 * DAY, "sediment", "failed")
    db.conn.close()
    return config.data_dir


def _run(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["features", *args, "--data-dir", str(data_dir)])


def test_get_prints_the_rows_in_range_as_tab_separated_columns(data_dir: Path) -> None:
    result = _run(data_dir, "get", "wh-1", "--name", FEATURE_NAMES[0], "--start", "2026-01-02", "--end", "2026-01-04")

    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.output.splitlines()]
    assert lines == [
        ["window_end", FEATURE_NAMES[0]],
        ["2026-01-02T00:00:00.000000Z", "1"],
        ["2026-01-03T00:00:00.000000Z", "2"],
    ]


def test_get_with_no_rows_says_none_and_json_gives_null_for_missing_values(data_dir: Path) -> None:
    empty = _run(data_dir, "get", "wh-1", "--start", "2027-01-01")
    as_json = _run(data_dir, "get", "wh-1", "--name", FEATURE_NAMES[0], "--end", "2026-01-02", "--json")

    assert (empty.exit_code, empty.output) == (0, "none\n")
    assert json.loads(as_json.output) == [{"window_end": "2026-01-01T00:00:00.000000Z", FEATURE_NAMES[0]: 0.0}]


def test_latest_says_how_old_each_value_is_under_a_header(data_dir: Path) -> None:
    result = _run(data_dir, "latest", "wh-1")
    as_json = json.loads(_run(data_dir, "latest", "wh-1", "--json").output)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].split() == ["FEATURE", "VALUE", "WINDOW_END", "AGE"]
    first = next(line for line in result.output.splitlines() if line.startswith(f"{FEATURE_NAMES[0]} "))
    name, value, window_end, *age = first.split()
    assert (value, window_end) == ("3", "2026-01-04T00:00:00.000000Z") and age
    assert as_json["values"][FEATURE_NAMES[0]]["value"] == 3.0


def test_latest_as_of_a_time_or_the_data_says_what_now_it_used(data_dir: Path) -> None:
    at_noon = _run(data_dir, "latest", "wh-1", "--as-of", "2026-01-02T12:00:00Z", "--json")
    of_data = _run(data_dir, "latest", "wh-1", "--as-of", "data")

    assert json.loads(at_noon.stdout)["values"][FEATURE_NAMES[0]]["window_end"] == "2026-01-02T00:00:00.000000Z"
    assert of_data.exit_code == 0, of_data.output
    assert of_data.stdout.splitlines()[0] == "as of 2026-01-04T00:00:00.000001Z"  # just after the newest window
    first = next(line for line in of_data.stdout.splitlines() if line.startswith(f"{FEATURE_NAMES[0]} "))
    assert first.split()[1:] == ["3", "2026-01-04T00:00:00.000000Z", "0:00:00"]


def test_latest_before_simulated_time_says_where_the_rows_are(tmp_path: Path) -> None:
    """``sim run`` stores windows ahead of the wall clock: "now" is before every row, so nothing has been reported
    by then, and the command says the rows lie after it."""
    config = CloudConfig(data_dir=tmp_path / "cloud")
    db = open_database(config.database_path)
    ahead = datetime.now(UTC) + 30 * DAY
    FeatureStore(db).store_device_features("wh-sim", vector(1.0), ahead)
    db.conn.close()

    now = _run(config.data_dir, "latest", "wh-sim")
    of_data = _run(config.data_dir, "latest", "wh-sim", "--as-of", "data")

    assert now.exit_code == 0, now.output
    first = next(line for line in now.stdout.splitlines() if line.startswith(f"{FEATURE_NAMES[0]} "))
    assert first.split()[1:] == ["none", "by", "then"]
    assert "no feature windows in this window, but the stored feature windows" in now.stderr
    assert f"({iso(ahead)} to {iso(ahead)}) lie after it: --as-of data looks there" in now.stderr
    first = next(line for line in of_data.stdout.splitlines() if line.startswith(f"{FEATURE_NAMES[0]} "))
    assert first.split()[1] == "1" and of_data.stderr == ""


def test_as_of_must_be_now_data_or_a_time(data_dir: Path) -> None:
    result = _run(data_dir, "latest", "wh-1", "--as-of", "yesterday")

    assert result.exit_code == 2
    assert "'yesterday' is not an ISO-8601 date or time" in result.output


def test_dataset_builds_and_records_a_labelled_dataset(data_dir: Path) -> None:
    args = [
        "dataset",
        "--start",
        "2026-01-01",
        "--end",
        "2026-01-05",
        "--horizon-days",
        "1",
        "--as-of",
        AS_OF.isoformat(),
    ]

    first, second = _run(data_dir, *args), _run(data_dir, *args)

    assert first.exit_code == 0, first.output
    record, again = json.loads(first.output), json.loads(second.output)
    assert record["row_count"] == 4 and record["content_hash"] == again["content_hash"]
    db = open_database(CloudConfig(data_dir=data_dir).database_path)
    try:
        assert FeatureStore(db).get_dataset_record(record["dataset_id"]).content_hash == record["content_hash"]
    finally:
        db.conn.close()


def test_a_dataset_with_no_rows_warns_on_stderr_and_says_where_the_rows_are(data_dir: Path) -> None:
    result = _run(data_dir, "dataset", "--start", "2027-01-01", "--end", "2027-02-01")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["row_count"] == 0
    assert result.stderr.startswith("warning: 0 rows: no heater has a feature window ending in [2027-01-01")
    assert "the stored feature windows run from 2026-01-01T00:00:00.000000Z to 2026-01-04T00:00:00.000000Z" in (
        result.stderr
    )


def test_errors_are_clear_messages(data_dir: Path) -> None:
    unknown = _run(data_dir, "latest", "wh-9")
    bad_date = _run(data_dir, "dataset", "--start", "yesterday", "--end", "2026-01-05")
    bad_name = _run(data_dir, "dataset", "--name", "bogus", "--start", "2026-01-01", "--end", "2026-01-05")

    assert unknown.exit_code == 1 and "unknown device 'wh-9'" in unknown.output
    assert bad_date.exit_code == 2 and "'yesterday' is not an ISO-8601 date" in bad_date.output
    assert bad_name.exit_code == 1 and "bogus" in bad_name.output
