"""``--help`` of every command answers without loading the heavy libraries: statistics and training (scipy,
scikit-learn, ONNX, numba), the web server (FastAPI, uvicorn), the embedded broker and the settings reader. They are
imported when a command runs, so reading help (or a simple listing) does not cost seconds.

Each top-level command is probed in its own process: every command under it shows its help there, then the process
says which heavy modules it has loaded. (Speed itself is measured by benchmarks, never asserted.)
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from iotsphere.cli import main

#: read when a command runs (shared.settings): never for help, on any side
SETTINGS = ("pydantic_settings",)
HEAVY = ("scipy", "sklearn", "onnx", "onnxruntime", "skl2onnx", "numba", "fastapi", "uvicorn", "amqtt", *SETTINGS)
#: the gateway agent's module loads onnxruntime for its inference: its help is held to the settings rule only
GATEWAY = "edge"

PROBE = """
import json, sys
import click
from click.testing import CliRunner
from iotsphere.cli import main

def paths(command, prefix):
    yield prefix
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            yield from paths(command.get_command(ctx, name), [*prefix, name])

top = sys.argv[1]
shown = []
for path in paths(main.get_command(click.Context(main), top), [top]):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, (path, result.output)
    shown.append(" ".join(path))
print(json.dumps({"shown": shown, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)}))
"""


@pytest.mark.parametrize("top", main.list_commands(None))
def test_help_loads_no_heavy_library(top: str) -> None:
    heavy = SETTINGS if top == GATEWAY else HEAVY
    probe = f"HEAVY = {heavy!r}\n{PROBE}"

    done = subprocess.run([sys.executable, "-c", probe, top], capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["shown"][0] == top
    assert {module.split(".")[0] for module in report["loaded"]} == set(), report["shown"]
