"""Run every benchmark module (``bench/bench_*.py``) or those named on the command line.

Each module exposes ``run() -> dict`` returning its figures (and the targets it is judged by).
Results go to ``bench/results/<name>.json``; ``bench/results/summary.md``, which docs/benchmarks.md quotes
from, is rebuilt from every result file, so running one benchmark keeps the others' figures.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"


def _machine() -> dict:

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}


def _write_summary() -> None:
    lines = [f"# Benchmark results (summary written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)", ""]
    lines.append("Each section is one `make bench` module's last run; `_seconds` is its duration.")
    for path in sorted(RESULTS.glob("*.json")):
        lines += ["", f"## {path.stem}", "", "```json", path.read_text().strip(), "```"]
    (RESULTS / "summary.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    RESULTS.mkdir(exist_ok=True)
    failed = 0
    for name in names:
        print(f"== bench {name}", flush=True)
        started = time.perf_counter()
        try:
            figures = importlib.import_module(f"bench.bench_{name}").run()
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failed += 1
            print(f"   FAILED: {exc!r}", flush=True)
            continue
        figures["_seconds"] = round(time.perf_counter() - started, 2)
        figures["_machine"] = _machine()
        figures["_ran_at"] = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        figures["_load_average"] = [round(x, 2) for x in os.getloadavg()]
        (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
        print(json.dumps(figures, indent=2, default=str), flush=True)
    _write_summary()
    print(f"results in {RESULTS}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
