"""How long ``iotsphere <command> --help`` takes, as a person at a terminal waits for it (issue 14 §2).

Method. Each top-level command's ``--help`` runs as its own process (the installed ``iotsphere`` script, so Python's
start-up and every import count), REPEATS times; the figure is the median wall time. Judged by: well under half a
second each. tests/test_cli_help_imports.py keeps the heavy libraries out of help; this measures what is left.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from iotsphere.cli import main

REPEATS = 5
TARGET_S = 0.5
IOTSPHERE = str(Path(sys.executable).parent / "iotsphere")


def _help_seconds(command: str) -> float:
    times = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        subprocess.run([IOTSPHERE, command, "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - began)
    return round(statistics.median(times), 3)


def run() -> dict:
    seconds = {command: _help_seconds(command) for command in main.list_commands(None)}
    return {
        "help_median_s": seconds,
        "slowest": max(seconds, key=seconds.get),
        "target_s": TARGET_S,
        "over_target": sorted(command for command, took in seconds.items() if took >= TARGET_S),
    }
