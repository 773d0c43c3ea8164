"""Every command that prints a list says "none" on a cloud with nothing to list (not an empty screen), and
prints its rows under a header otherwise."""

from __future__ import annotations

import json

import pytest
import sqlite_utils
from click.testing import CliRunner

from cloud.config import CloudConfig
from iotsphere.cli import main
from tests.api import seed

LISTS = [
    ["models", "list"],
    ["predictions", "list"],
    ["admin", "audit", "list"],
    ["admin", "list-keys"],
    ["security", "events"],
    ["security", "counts"],
    ["deployments", "list"],
    ["deployments", "not-directed"],
    ["dead-letters"],
    ["train", "runs"],
    ["train", "schedules"],
    ["retraining", "decisions"],
    ["experiments", "list"],
    ["rollouts", "list"],
    ["drift", "history", "component_failure"],
]


def _run(config: CloudConfig, args: list[str]) -> str:
    result = CliRunner().invoke(main, [*args, "--data-dir", str(config.data_dir)])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("args", LISTS, ids=" ".join)
def test_an_empty_list_says_none(config: CloudConfig, db: sqlite_utils.Database, args: list[str]) -> None:
    assert _run(config, args).splitlines()[0].startswith("none")


@pytest.mark.parametrize("args", [a for a in LISTS if a != ["dead-letters"]], ids=" ".join)
def test_an_empty_list_is_an_empty_json_array(config: CloudConfig, db: sqlite_utils.Database, args: list[str]) -> None:
    assert json.loads(_run(config, [*args, "--json"])) == []


def test_rows_come_under_a_header(config: CloudConfig, db: sqlite_utils.Database) -> None:
    seed.model_version(db, "component_failure", "1", "released", days=0)
    seed.model_version(db, "component_failure", "2", "production", days=1)

    header, *rows = [line.split() for line in _run(config, ["models", "list"]).splitlines()]

    assert header == ["MODEL", "VERSION", "STATUS", "FOR", "EVALUATION", "CREATED"]
    assert [row[:3] for row in rows] == [
        ["component_failure", "1", "released"],
        ["component_failure", "2", "production"],
    ]
