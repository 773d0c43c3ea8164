"""A gateway that only serves never loads the TUF client stack (tuf, urllib3); the update tests use it for real."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(done.stdout.split())


def test_serving_agent_does_not_import_tuf_or_urllib3():
    assert not {"tuf", "urllib3"} & _loaded_after("import edge_agent.agent, edge_agent.updater, edge_agent.tuf_client")
