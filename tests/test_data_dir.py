"""Only ``iotsphere cloud init`` makes a cloud data folder: every other command refuses a folder it never made, so a
mistyped ``--data-dir`` is one clear error, not a new empty database (issue 14 §2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cloud.config import PASSPHRASE_ENV, CloudConfig
from iotsphere.cli import main

IOTSPHERE = str(Path(sys.executable).parent / "iotsphere")

#: read-only and writing commands alike, one of each group
COMMANDS = [
    ["models", "list"],
    ["predictions", "list"],
    ["features", "latest", "gw-1-00000"],
    ["feedback", "rate", "p-1", "4"],
    ["monitor", "report"],
    ["drift", "history", "component_failure"],
    ["train", "runs"],
    ["retraining", "decisions"],
    ["experiments", "list"],
    ["rollouts", "list"],
    ["deployments", "list"],
    ["dead-letters"],
    ["security", "events"],
    ["admin", "list-keys"],
    ["admin", "create-key", "--role", "viewer", "--name", "dashboard"],
    ["admin", "audit", "list"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_command_refuses_a_folder_cloud_init_never_made(tmp_path: Path, args: list[str]) -> None:
    typo = tmp_path / "clodu"

    result = CliRunner().invoke(main, [*args, "--data-dir", str(typo)])

    assert result.exit_code == 1, result.output
    assert f"iotsphere cloud init --data-dir {typo}" in result.output
    assert not typo.exists()


def test_cloud_serve_refuses_it_before_starting_anything(tmp_path: Path) -> None:
    typo = tmp_path / "clodu"
    env = {**os.environ, "IOTSPHERE_DATA_DIR": str(typo)}

    done = subprocess.run([IOTSPHERE, "cloud", "serve", "--port", "1"], capture_output=True, text=True, env=env)

    assert done.returncode == 1
    assert f"iotsphere cloud init --data-dir {typo}" in done.stderr and "Traceback" not in done.stderr
    assert not typo.exists()


def test_cloud_init_makes_the_folder_the_other_commands_then_use(tmp_path: Path) -> None:
    data_dir = tmp_path / "cloud"
    runner = CliRunner(env={PASSPHRASE_ENV: "s3cret"})

    made = runner.invoke(main, ["cloud", "init", "--data-dir", str(data_dir)])
    listed = runner.invoke(main, ["models", "list", "--data-dir", str(data_dir)])

    assert made.exit_code == 0, made.output
    assert CloudConfig(data_dir=data_dir).initialised
    assert listed.exit_code == 0 and listed.output.startswith("none"), listed.output
