"""Probation with real models: committed after enough good predictions, rolled back on bad ones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from edge_agent.config import ProbationPolicy
from edge_agent.inference import Heater, predict
from edge_agent.model_loader import load_model
from edge_agent.model_store import ModelStore
from edge_agent.probation import Probation
from shared.messages import EventKind
from tests.edge.releases import build_release

MODEL = "component_failure"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
HEATERS = [Heater(f"wh-{i}", "nwp500-50") for i in range(10)]


def _store_with_two_versions(tmp_path: Path, events: list) -> ModelStore:
    """Version 1 committed, version 2 just activated and on probation (director sequences 1 and 2)."""
    store = ModelStore(tmp_path / "models", on_event=events.append)
    for version, seed in (("1", 0), ("2", 1)):
        built = build_release(version, seed=seed)
        store.install(built.release, built.release_bytes, built.onnx_bytes)
        store.activate(load_model(built.onnx_bytes, built.release), sequence=int(version))
        if version == "1":
            store.commit(MODEL, "1")
    return store


def _serve(store: ModelStore, probation: Probation, rows: np.ndarray) -> None:
    model = store.active()[MODEL]
    probation.observe(model, predict({MODEL: model}, rows, HEATERS, window_end=NOW, made_at=NOW))


def test_enough_good_predictions_commit_the_release(tmp_path: Path):
    events: list = []
    store = _store_with_two_versions(tmp_path, events)
    probation = Probation(store, ProbationPolicy(predictions_required=25), on_event=events.append)
    rows = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    for _ in range(2):
        _serve(store, probation, rows)
    assert store.pointer(MODEL).committed is False  # 20 of 25
    _serve(store, probation, rows)
    assert store.pointer(MODEL).committed is True
    # the commit names the document that activated the release, so the cloud can tell which deployment passed
    assert [(e.kind, e.model_version, e.director_sequence) for e in events] == [(EventKind.COMMIT, "2", 2)]
    assert store.states()[0].state == "committed"


def test_out_of_bounds_outputs_roll_back_to_the_last_known_good(tmp_path: Path):
    events: list = []
    store = _store_with_two_versions(tmp_path, events)
    probation = Probation(store, on_event=events.append)
    rows = np.zeros((10, 4), dtype=np.float32)
    rows[3] = np.inf  # this heater's probabilities come out NaN
    _serve(store, probation, rows)
    assert store.active()[MODEL].version == "1"
    # the rollback names the document whose release failed
    assert [(e.kind, e.model_version, e.director_sequence) for e in events] == [(EventKind.ROLLBACK, "1", 2)]
    assert "wh-3" in events[0].detail
    assert store.states()[0].state == "rolled_back"


def test_a_batch_slower_than_the_bound_fails_probation(tmp_path: Path):
    events: list = []
    store = _store_with_two_versions(tmp_path, events)
    probation = Probation(store, ProbationPolicy(max_batch_latency_ms=0.0), on_event=events.append)
    _serve(store, probation, np.zeros((10, 4), dtype=np.float32))
    assert store.active()[MODEL].version == "1" and "ms" in events[0].detail


def test_without_a_release_to_go_back_to_the_failure_is_reported_once(tmp_path: Path):
    events: list = []
    store = ModelStore(tmp_path / "models", on_event=events.append)
    built = build_release()
    store.install(built.release, built.release_bytes, built.onnx_bytes)
    store.activate(load_model(built.onnx_bytes, built.release))
    probation = Probation(store, ProbationPolicy(max_batch_latency_ms=0.0), on_event=events.append)
    for _ in range(3):
        _serve(store, probation, np.zeros((10, 4), dtype=np.float32))
    assert [(e.kind, e.model_version) for e in events] == [(EventKind.HEALTH, "1")]
    assert store.active()[MODEL].version == "1"
