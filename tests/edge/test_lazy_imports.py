"""A gateway imports only what it runs: serving loads neither the TUF client stack (tuf, urllib3; the update
tests use it for real) nor ``onnx`` (the capped child parses models) nor ``cryptography`` (a director document's
signature and a technician's sealed outcome load it; tests/edge/test_updater.py and test_outbox_at_rest.py use it)
nor asyncio, nor ``http.server`` (socketserver) while the technicians' local API is off."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.model_loader import FeatureContract, load_model
from edge_agent.model_store import ModelStore
from firmware_sim.live import Fleet
from shared.features import FEATURE_NAMES, FEATURE_SET_VERSION
from shared.topics import telemetry_topic
from tests.edge.releases import build_serving_release

ROOT = Path(__file__).resolve().parents[2]


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(done.stdout.split())


def test_serving_agent_does_not_import_tuf_urllib3_or_cryptography():
    loaded = _loaded_after(
        "import edge_agent.agent, edge_agent.updater, edge_agent.update_fetch, edge_agent.tuf_client"
    )
    assert not {"tuf", "urllib3", "cryptography", "asyncio", "socketserver"} & loaded


def test_agent_serving_installed_models_never_imports_onnx_or_cryptography(tmp_path):
    """The capped child parses a model with ``onnx``; the agent only opens what passed there (bench_edge: ~20 MB).
    Serving telemetry signs, verifies and seals nothing, so ``cryptography`` (~8 MB) stays out too."""
    built = build_serving_release()
    store = ModelStore(tmp_path / "models", FeatureContract(FEATURE_SET_VERSION, tuple(FEATURE_NAMES)))
    store.install(built.release, built.release_bytes, built.onnx_bytes)
    store.activate(load_model(built.onnx_bytes, built.release, store.features))
    start = (
        "from pathlib import Path\nfrom edge_agent.agent import AgentConfig, EdgeAgent\n"
        f"agent = EdgeAgent(AgentConfig('gw-lazy', Path({str(tmp_path)!r})))\nagent.start()\n"
        "assert list(agent.store.active()) == ['component_failure'], agent.store.active()\n"
        f"for topic, payload in {_telemetry('gw-lazy')!r}:\n    agent.on_telemetry(topic, payload)\n"
        "assert len(agent.windows) == 2 and not agent.quarantine.counts, agent.quarantine.counts\nagent.stop(0)"
    )
    loaded = _loaded_after(start)
    assert "onnxruntime" in loaded and not {"onnx", "cryptography", "asyncio", "socketserver"} & loaded


def _telemetry(gateway_id: str) -> list[tuple[str, bytes]]:
    """Two heaters' first hour of readings, as they arrive from MQTT."""
    fleet = Fleet(gateway_id, heaters=2, seed=1, start=datetime(2026, 3, 1, tzinfo=UTC))
    return [
        (telemetry_topic(gateway_id, reading.device_id), reading.to_json())
        for _ in range(60)
        for reading in fleet.step()
    ]
