"""``iotsphere retraining check`` as a user runs it (its own process, the CLI's logging set up): the decision is
said once, not once printed and once more logged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cloud.config import CloudConfig

IOTSPHERE = str(Path(sys.executable).parent / "iotsphere")


def test_the_decision_is_printed_once(config: CloudConfig) -> None:
    command = [IOTSPHERE, "retraining", "check", "component_failure", "--data-dir", str(config.data_dir)]

    result = subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    said = (result.stdout + result.stderr).splitlines()
    assert [line for line in said if "no_trigger" in line] == [result.stdout.strip()]
    assert result.stdout.startswith("no_trigger: ")
