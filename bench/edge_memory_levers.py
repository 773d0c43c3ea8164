"""What each memory lever measured for the gateway does to ``bench edge``'s peak (docs/edge.md, "Levers measured").

``.venv/bin/python -m bench.edge_memory_levers`` builds the benchmark's three models and 100 heaters' telemetry once,
then runs its memory child (``bench.bench_edge``) once per lever, each in a fresh process, and prints the peaks:

- onnxruntime session options (no CPU arena, no memory pattern, fewer graph optimisations), patched into the
  agent's ``create_session``;
- glibc's malloc arenas capped (``MALLOC_ARENA_MAX``, read by glibc at process start), a fixed mmap threshold
  (``MALLOC_MMAP_THRESHOLD_``: large temporaries go back to the system when freed), or Python's objects on glibc's
  malloc instead of its own allocator (``PYTHONMALLOC=malloc``);
- pydantic models built on first use (``defer_build``, patched onto ``BaseModel`` before anything imports);
- docstrings and asserts stripped (``PYTHONOPTIMIZE=2``, as ``python -OO``);
- telemetry through the agent's worker thread, as from MQTT (paho's thread queues, the worker parses), instead of
  ``on_telemetry`` on the main thread, with and without the arena cap.

``.venv/bin/python -m bench.edge_memory_levers pydantic`` instead prints what pydantic costs the agent, imported
step by step in a fresh interpreter after the libraries before it: pydantic itself, its schema machinery (loaded with
the first model class), and the wire contract's models (``shared.messages``, ``shared.telemetry``, ``shared.release``
and ``shared.director``): what encoding the gateway's messages without pydantic could save, and what it could not.

Not part of ``make bench``: these are one-off comparisons, not figures with targets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.bench_edge import _CHILD, _HEAVY, _installed_agent_data, _models, _throughput
from firmware_sim.history import generate_history

_SESSION_OPTIONS = """
import onnxruntime as ort
from edge_agent import model_loader
_session = ort.InferenceSession
def _with_options(data, options, **kwargs):
    {}
    return _session(data, options, **kwargs)
model_loader.ort.InferenceSession = _with_options
"""

_DEFER_BUILD = """
import pydantic
pydantic.BaseModel.model_config = pydantic.ConfigDict(defer_build=True)
"""

#: the bench child, but the readings go through the agent's inbox and worker thread, fed by a thread as paho's
_THROUGH_WORKER = _CHILD.replace(
    """with open(payloads, "rb") as lines:
    for line in lines:
        topic, payload = line.rstrip(b"\\n").split(b" ", 1)
        agent.on_telemetry(topic.decode(), payload)
        count += 1
""",
    """import threading
def network_thread():
    global count
    with open(payloads, "rb") as lines:
        for line in lines:
            topic, payload = line.rstrip(b"\\n").split(b" ", 1)
            agent._inbox.put((topic.decode(), payload))
            count += 1
feeder = threading.Thread(target=network_thread)
feeder.start()
feeder.join()
while not agent._inbox.empty():
    time.sleep(0.05)
time.sleep(0.5)  # the last reading taken off the queue is processed
""",
)
assert _THROUGH_WORKER != _CHILD, "bench edge's child changed: update the worker-thread variant"

LEVERS: dict[str, tuple[str, dict[str, str]]] = {
    "as bench edge": (_CHILD, {}),
    "no CPU arena, no memory pattern": (
        _SESSION_OPTIONS.format("options.enable_cpu_mem_arena = False; options.enable_mem_pattern = False") + _CHILD,
        {},
    ),
    "basic graph optimisations only": (
        _SESSION_OPTIONS.format("options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC")
        + _CHILD,
        {},
    ),
    "MALLOC_ARENA_MAX=2": (_CHILD, {"MALLOC_ARENA_MAX": "2"}),
    "MALLOC_MMAP_THRESHOLD_=131072": (_CHILD, {"MALLOC_MMAP_THRESHOLD_": "131072"}),
    "PYTHONMALLOC=malloc": (_CHILD, {"PYTHONMALLOC": "malloc"}),
    "pydantic models built on first use": (_DEFER_BUILD + _CHILD, {}),
    "PYTHONOPTIMIZE=2 (python -OO)": (_CHILD, {"PYTHONOPTIMIZE": "2"}),
    "through the worker thread": (_THROUGH_WORKER, {}),
    "through the worker thread, MALLOC_ARENA_MAX=2": (_THROUGH_WORKER, {"MALLOC_ARENA_MAX": "2"}),
}


#: (what, code) run one after another; each figure is what VmRSS grew by
_PYDANTIC_STEPS = (
    ("numpy, onnxruntime, paho (before pydantic)", "import numpy, onnxruntime, paho.mqtt.client"),
    ("pydantic", "import pydantic"),
    ("its model machinery", "from pydantic import BaseModel, ConfigDict, Field, AfterValidator, field_validator"),
    ("the first model class (schema building)", "class First(BaseModel):\n    x: int = 1"),
    ("shared.messages (every MQTT message)", "import shared.messages"),
    ("shared.telemetry, shared.release, shared.director", "import shared.telemetry, shared.release, shared.director"),
)
_STEPS = """
import json, sys
from pathlib import Path

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

grown, before = [], rss()
for code in json.loads(sys.argv[1]):
    exec(code)
    grown.append(rss() - before)
    before = rss()
print(json.dumps(grown))
"""


def pydantic_shares() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _STEPS, json.dumps([code for _, code in _PYDANTIC_STEPS])],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    for (what, _), grown in zip(_PYDANTIC_STEPS, json.loads(done.stdout), strict=True):
        print(f"{what:52} {grown:5.1f} MB")


def _peak(script: str, environment: dict[str, str], data_dir: Path, payloads: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, str(data_dir), str(payloads), ",".join(_HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, **environment},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-edge-levers-") as scratch:
        folder = Path(scratch)
        _, _, releases = _models(generate_history(heaters=120, days=60, seed=5))
        for name in ("throughput", "memory"):
            _installed_agent_data(folder / name, releases)
        _throughput(folder / "throughput", folder / "telemetry.txt")  # writes the payloads the child replays
        for lever, (script, environment) in LEVERS.items():
            figures = _peak(script, environment, folder / "memory", folder / "telemetry.txt")
            print(
                f"{lever:48} peak {figures['peak_rss_mb']:6.1f} MB, with models {figures['rss_with_models_mb']:6.1f}"
                f" MB, {figures['heaters']} heaters",
                flush=True,
            )


if __name__ == "__main__":
    if sys.argv[1:] == ["pydantic"]:
        pydantic_shares()
    else:
        main()
