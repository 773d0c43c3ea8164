"""A gateway imports only what it runs: serving loads neither the TUF client stack (tuf, urllib3; the update
tests use it for real) nor ``onnx`` (the capped child parses models)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edge_agent.model_loader import FeatureContract, load_model
from edge_agent.model_store import ModelStore
from shared.features import FEATURE_NAMES, FEATURE_SET_VERSION
from tests.edge.releases import build_serving_release

ROOT = Path(__file__).resolve().parents[2]


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(done.stdout.split())


def test_serving_agent_does_not_import_tuf_or_urllib3():
    assert not {"tuf", "urllib3"} & _loaded_after("import edge_agent.agent, edge_agent.updater, edge_agent.tuf_client")


def test_agent_serving_installed_models_never_imports_onnx(tmp_path):
    """The capped child parses a model with ``onnx``; the agent only opens what passed there (bench_edge: ~20 MB)."""
    built = build_serving_release()
    store = ModelStore(tmp_path / "models", FeatureContract(FEATURE_SET_VERSION, tuple(FEATURE_NAMES)))
    store.install(built.release, built.release_bytes, built.onnx_bytes)
    store.activate(load_model(built.onnx_bytes, built.release, store.features))
    start = (
        "from pathlib import Path\nfrom edge_agent.agent import AgentConfig, EdgeAgent\n"
        f"agent = EdgeAgent(AgentConfig('gw-lazy', Path({str(tmp_path)!r})))\nagent.start()\n"
        "assert list(agent.store.active()) == ['component_failure'], agent.store.active()\nagent.stop(0)"
    )
    loaded = _loaded_after(start)
    assert "onnxruntime" in loaded and "onnx" not in loaded
