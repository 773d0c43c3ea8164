"""``iotsphere deployments list|show``: the same state as the API, on the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from cloud.deployments import DEADLINE_ENV
from iotsphere.cli import main
from tests.deployments.conftest import MODEL, Fleet


@pytest.fixture
def recorded(fleet: Fleet) -> Fleet:
    now = datetime.now(UTC)
    sequence = fleet.direct("gw-a", now - timedelta(minutes=5), **{MODEL: "1"})
    fleet.applied("gw-a", sequence, "1", now - timedelta(minutes=4), commit_after=timedelta(minutes=1))
    fleet.direct("gw-b", now - timedelta(hours=2), **{MODEL: "1"})
    return fleet


def _run(fleet: Fleet, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(
        main, ["deployments", *args, "--data-dir", str(fleet.config.data_dir)], env={DEADLINE_ENV: "", **(env or {})}
    )


def test_list_prints_one_line_per_deployment_and_filters_overdue(recorded: Fleet):
    listed = _run(recorded, "list")
    assert listed.exit_code == 0, listed.output
    header, *rows = [line.split() for line in listed.output.splitlines()]
    assert header == ["GATEWAY", "MODEL", "VERSION", "SEQUENCE", "STATE", "SINCE", "WHY"]
    assert [row[:5] for row in rows] == [["gw-a", MODEL, "1", "#1", "committed"], ["gw-b", MODEL, "1", "#1", "overdue"]]
    assert rows[1][5:7] == ["(still", "pending)"]

    overdue = _run(recorded, "list", "--overdue")
    assert [line.split()[0] for line in overdue.output.splitlines()] == ["GATEWAY", "gw-b"]
    # the deadline from the option, then from the environment: nothing overdue says so
    assert _run(recorded, "list", "--overdue", "--deadline", "10800").output == "none\n"
    assert _run(recorded, "list", "--overdue", env={DEADLINE_ENV: "10800"}).output == "none\n"


def test_show_gives_every_step_with_its_time_and_json(recorded: Fleet):
    shown = _run(recorded, "show", "gw-a")
    assert shown.exit_code == 0, shown.output
    steps = [line.split()[0] for line in shown.output.splitlines()[2:]]
    assert steps == ["issued", "downloading", "probation", "committed"]  # never published: no broker here

    (deployment,) = json.loads(_run(recorded, "show", "gw-b", "--json").output)
    assert (deployment["state"], deployment["stage"], deployment["version"]) == ("overdue", "pending", "1")


def test_clear_errors(recorded: Fleet):
    unknown = _run(recorded, "show", "gw-nope")
    assert unknown.exit_code == 1
    assert "no director document was issued to gateway 'gw-nope'" in unknown.output
    contradiction = _run(recorded, "list", "--overdue", "--state", "committed")
    assert contradiction.exit_code == 1 and "contradict" in contradiction.output
    bad_env = _run(recorded, "list", env={DEADLINE_ENV: "soon"})
    assert bad_env.exit_code == 1 and DEADLINE_ENV in bad_env.output
    assert _run(recorded, "list", "--state", "lost").exit_code == 2
