"""Installed releases and the atomic active pointer, on real files, including a process killed mid-switch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_agent.model_loader import load_model
from edge_agent.model_store import ModelStore
from shared.director import DirectorRejected, RejectRule
from shared.messages import EventKind
from tests.edge.releases import build_release


def _install_and_activate(store: ModelStore, version: str, seed: int = 0):
    built = build_release(version=version, seed=seed)
    store.install(built.release, built.release_bytes, built.onnx_bytes)
    return store.activate(load_model(built.onnx_bytes, built.release))


def test_activation_survives_a_restart_and_keeps_the_last_known_good(tmp_path: Path):
    store = ModelStore(tmp_path / "models")
    _install_and_activate(store, "1")
    assert store.commit("component_failure", "1")
    _install_and_activate(store, "2", seed=1)
    assert store.commit("component_failure", "2")
    pointer = _install_and_activate(store, "3", seed=2)
    assert (pointer.version, pointer.previous, pointer.committed) == ("3", "2", False)
    assert store.installed_versions("component_failure") == ["2", "3"]  # older ones pruned

    reopened = ModelStore(tmp_path / "models")
    active = reopened.load_active()
    assert active["component_failure"].version == "3"
    assert [(s.active_version, s.state) for s in reopened.states()] == [("3", "probation")]


def test_a_release_that_never_passed_probation_is_not_the_last_known_good(tmp_path: Path):
    store = ModelStore(tmp_path / "models")
    _install_and_activate(store, "1")
    assert store.commit("component_failure", "1")
    _install_and_activate(store, "2", seed=1)  # still on probation when 3 arrives
    pointer = _install_and_activate(store, "3", seed=2)
    assert pointer.previous == "1"


def test_installing_the_same_release_twice_is_a_no_op(tmp_path: Path):
    store = ModelStore(tmp_path / "models")
    built = build_release()
    assert store.install(built.release, built.release_bytes, built.onnx_bytes) is True
    assert store.install(built.release, built.release_bytes, built.onnx_bytes) is False


def test_an_active_version_cannot_be_overwritten_with_other_bytes(tmp_path: Path):
    store = ModelStore(tmp_path / "models")
    _install_and_activate(store, "1")
    other = build_release(version="1", seed=5)
    with pytest.raises(DirectorRejected) as caught:
        store.install(other.release, other.release_bytes, other.onnx_bytes)
    assert caught.value.rule is RejectRule.ACTIVATE


def test_rollback_returns_to_the_last_known_good(tmp_path: Path):
    events = []
    store = ModelStore(tmp_path / "models", on_event=events.append)
    _install_and_activate(store, "1")
    _install_and_activate(store, "2", seed=1)
    assert store.rollback("component_failure", "probation failed") == "1"
    assert store.active()["component_failure"].version == "1"
    assert store.pointer("component_failure").version == "1"
    assert [(e.kind, e.model_version) for e in events] == [(EventKind.ROLLBACK, "1")]
    assert store.rollback("component_failure", "again") is None  # nothing older to go to


def test_a_corrupted_active_model_falls_back_at_start(tmp_path: Path):
    store = ModelStore(tmp_path / "models")
    _install_and_activate(store, "1")
    _install_and_activate(store, "2", seed=1)
    model_file = tmp_path / "models/component_failure/versions/2/model.onnx"
    model_file.write_bytes(model_file.read_bytes()[:-10])

    events = []
    reopened = ModelStore(tmp_path / "models", on_event=events.append)
    assert reopened.load_active()["component_failure"].version == "1"
    assert [(e.kind, e.model_version) for e in events] == [(EventKind.HEALTH, "2"), (EventKind.ROLLBACK, "1")]
    assert events[0].rule == RejectRule.ONNX_LOAD.value


_FLIPPER = """
import sys
from pathlib import Path
from edge_agent.model_loader import load_model
from edge_agent.model_store import ModelStore
from shared.release import ReleaseFile

store, sources = ModelStore(Path(sys.argv[1])), Path(sys.argv[2])
releases = []
for version in ("1", "2", "3"):
    release_bytes = (sources / version / "release.json").read_bytes()
    onnx_bytes = (sources / version / "model.onnx").read_bytes()
    release = ReleaseFile.model_validate_json(release_bytes)
    releases.append((release, release_bytes, onnx_bytes, load_model(onnx_bytes, release)))
n = 0
while True:
    release, release_bytes, onnx_bytes, model = releases[n % 3]
    store.install(release, release_bytes, onnx_bytes)
    store.activate(model)
    if n == 0:
        print("ready", flush=True)  # one version is active: from here on a kill may land anywhere
    n += 1
"""


def test_a_process_killed_while_switching_leaves_a_complete_active_version(tmp_path: Path):
    """SIGKILL a process that installs and activates in a loop: the pointer always names a loadable release."""
    root, sources = tmp_path / "models", tmp_path / "sources"
    for version in ("1", "2", "3"):
        built = build_release(version=version, seed=int(version))
        (sources / version).mkdir(parents=True)
        (sources / version / "release.json").write_bytes(built.release_bytes)
        (sources / version / "model.onnx").write_bytes(built.onnx_bytes)
    project = Path(__file__).parents[2]
    for delay in (0.02, 0.11, 0.23):
        child = subprocess.Popen(
            [sys.executable, "-c", _FLIPPER, str(root), str(sources)],
            stdout=subprocess.PIPE,
            cwd=project,
            env={**os.environ, "PYTHONPATH": str(project)},
        )
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(10)

        pointer = json.loads((root / "component_failure/active.json").read_bytes())
        assert pointer["version"] in {"1", "2", "3"}
        reopened = ModelStore(root)
        assert reopened.load_active()["component_failure"].version == pointer["version"]
        assert not list((root / "component_failure/versions").glob(".*"))  # crash leftovers cleared at start
