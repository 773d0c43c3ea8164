"""A gateway imports only what it runs: serving loads neither the TUF client stack (tuf, urllib3; the update
tests use it for real) nor ``onnx`` (the capped child parses models) nor ``cryptography`` (a director document's
signature loads it, in the update child; a technician's outcome is sealed with PyNaCl) nor asyncio, nor
``http.server`` (socketserver) while the technicians' local API is off."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.model_loader import FeatureContract, load_model
from edge_agent.model_store import ModelStore
from firmware_sim.live import Fleet
from shared.features import FEATURE_NAMES, FEATURE_SET_VERSION
from shared.topics import telemetry_topic
from tests.edge.mqtt_helpers import unique_prefix
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
        "from pathlib import Path\nfrom edge_agent.agent import EdgeAgent\nfrom edge_agent.config import AgentConfig\n"
        f"agent = EdgeAgent(AgentConfig('gw-lazy', Path({str(tmp_path)!r})))\nagent.start()\n"
        "assert list(agent.store.active()) == ['component_failure'], agent.store.active()\n"
        f"for topic, payload in {_telemetry('gw-lazy')!r}:\n    agent.on_telemetry(topic, payload)\n"
        "assert len(agent.windows) == 2 and not agent.quarantine.counts, agent.quarantine.counts\nagent.stop(0)"
    )
    loaded = _loaded_after(start)
    assert "onnxruntime" in loaded and not {"onnx", "cryptography", "asyncio", "socketserver"} & loaded


def test_an_outcome_sealed_stored_and_opened_to_be_sent_loads_libsodium_not_cryptography(tmp_path: Path):
    """A technician's outcome rests sealed in the outbox (PyNaCl, ~1 MB) without the ~7 MB of ``cryptography``."""
    loaded = _loaded_after(
        "from pathlib import Path\nfrom edge_agent.outbox import Outbox\n"
        f"outbox = Outbox(Path({str(tmp_path / 'outbox.sqlite3')!r}))\n"
        "outbox.append('t/up/outcomes', b'{\"notes\": \"x\"}', 'o-1', 'outcomes')\n"
        'assert [row.payload for row in outbox.take()] == [b\'{"notes": "x"}\']'
    )
    assert "nacl" in loaded and "cryptography" not in loaded


def test_the_serving_process_module_imports_neither_click_nor_the_settings_libraries():
    loaded = _loaded_after("import edge_agent.serve, edge_agent.agent")  # serve() imports the agent
    assert "onnxruntime" in loaded and not {"click", "pydantic_settings", "asyncio", "cryptography"} & loaded


def test_edge_run_checks_its_configuration_without_loading_what_the_serving_process_loads_again():
    """The command builds and checks ``AgentConfig`` and hands over; the agent's numpy and onnxruntime load once,
    in the serving process, not also in the command before its ``exec``."""
    loaded = _loaded_after("import iotsphere.cli, edge_agent.cli, edge_agent.config, edge_agent.serve")
    assert "click" in loaded and not {"numpy", "onnxruntime", "onnx"} & loaded


@pytest.mark.mqtt
def test_edge_run_hands_over_to_the_serving_process_in_the_same_process(tmp_path: Path):
    """``iotsphere edge run`` reads options and settings, then becomes ``python -m edge_agent.serve`` (same pid) with
    glibc's arenas capped, logging as the settings said, without asyncio (pydantic-settings imports it)."""
    arguments = ["run", "--gateway", "gw-handover", "--mqtt", "mqtt://127.0.0.1:1883", "--data-dir", str(tmp_path)]
    agent = subprocess.Popen(
        [sys.executable, "-c", "from edge_agent.cli import edge; edge()", *arguments, "--prefix", unique_prefix()],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "IOTSPHERE_LOG_FORMAT": "json"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [agent.stderr.readline() for _ in range(2)]
        started, running = json.loads(lines[0]), lines[1]
        assert started["logger"] == "edge_agent.agent" and "gw-handover started" in started["message"], lines
        assert running.startswith("edge agent gw-handover running"), lines
        process = Path(f"/proc/{agent.pid}")
        assert (process / "cmdline").read_bytes().split(b"\0")[1:3] == [b"-m", b"edge_agent.serve"]
        assert b"MALLOC_ARENA_MAX=2" in (process / "environ").read_bytes().split(b"\0")
        assert "_asyncio" not in (process / "maps").read_text()
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0
    assert "stopped" in agent.stderr.read()


def test_the_serving_module_started_by_hand_says_what_starts_it():
    started = subprocess.run([sys.executable, "-m", "edge_agent.serve"], capture_output=True, text=True, cwd=ROOT)
    assert started.returncode == 2 and "iotsphere edge run" in started.stderr


def _telemetry(gateway_id: str) -> list[tuple[str, bytes]]:
    """Two heaters' first hour of readings, as they arrive from MQTT."""
    fleet = Fleet(gateway_id, heaters=2, seed=1, start=datetime(2026, 3, 1, tzinfo=UTC))
    return [
        (telemetry_topic(gateway_id, reading.device_id), reading.to_json())
        for _ in range(60)
        for reading in fleet.step()
    ]
