"""``iotsphere drift check`` over a window relative to a "now" it names: the wall clock by default, the newest
stored feature window with ``--as-of data``, or a given time; an empty window says where the rows are."""

from __future__ import annotations

import json

import sqlite_utils
from click.testing import CliRunner, Result

from cloud.config import CloudConfig
from iotsphere.cli import main
from tests.api.conftest import config, db  # noqa: F401  (fixtures)
from tests.drift.fleet import NOW, feature_values, register, store_features


def _check(config: CloudConfig, *args: str) -> Result:  # noqa: F811
    return CliRunner().invoke(
        main,
        ["drift", "check", "component_failure", "--days", "7", *args, "--data-dir", str(config.data_dir), "--json"],
    )


def test_a_week_before_now_misses_rows_stored_in_another_time_and_says_where(
    config: CloudConfig,  # noqa: F811
    db: sqlite_utils.Database,  # noqa: F811
) -> None:
    register(db, feature_values(4_000, seed=1))
    store_features(db, feature_values(400, seed=2))  # half a day before NOW (2026-03-01), not the wall clock

    now = _check(config)
    of_data = _check(config, "--as-of", "data")
    given = _check(config, "--as-of", NOW.isoformat())

    assert now.exit_code == 0, now.output
    assert json.loads(now.stdout)["feature_drift"]["segments"]["all"]["rows"] == 0
    assert "no feature windows in this window" in now.stderr and "lie before it: --as-of data looks there" in now.stderr
    assert of_data.exit_code == 0, of_data.output
    checked = json.loads(of_data.stdout)
    assert checked["feature_drift"]["segments"]["all"]["rows"] == 400 and of_data.stderr == ""
    assert checked["window"]["end"] == "2026-02-28T12:00:00.000001Z"  # just after the newest stored window
    assert json.loads(given.stdout)["window"] == {
        "start": "2026-02-22T00:00:00.000000Z",
        "end": "2026-03-01T00:00:00.000000Z",
    }
