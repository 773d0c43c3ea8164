"""The whole loop: simulated history → training → signed release → a real agent serving → predictions in the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.registry import MLModelRegistry
from cloud.training.cli import train_from_history_file
from firmware_sim.history import generate_history
from shared.messages import EventKind
from tests.e2e.world import FIRST_PREDICTIONS_MINUTES, HEATERS, MODEL, running_world


@pytest.mark.mqtt
def test_a_model_trained_on_history_is_released_activated_and_serves_predictions_through_the_api(tmp_path: Path):
    history_path = tmp_path / "history.npz"
    generate_history(heaters=60, days=60, seed=5).save(history_path)

    with running_world(tmp_path) as world:
        artifacts = train_from_history_file(
            history_path, world.config, horizon_days=7, candidates=["logistic_regression"], echo=lambda _line: None
        )
        release = world.release(artifacts)
        version = release.model_version
        assert MLModelRegistry(world.db).get_version(MODEL, version)["status"] == "released"

        sequence = world.latest_document().signed.sequence
        world.wait_event(EventKind.ACTIVATE.value, sequence)
        assert [e["kind"] for e in world.events(sequence)] == [
            EventKind.DOWNLOAD.value,
            EventKind.INSTALL.value,
            EventKind.ACTIVATE.value,
        ]
        assert world.agent.store.active()[MODEL].model_sha256 == release.model_sha256

        world.feed(FIRST_PREDICTIONS_MINUTES - 60)
        stored = world.next_tick()
        assert len(stored) == HEATERS
        assert {(p["model_name"], p["model_version"], p["arm"]) for p in stored} == {(MODEL, version, "champion")}

        for device_id in world.fleet.device_ids:
            served = world.served_prediction(device_id)
            assert (served["model_version"], served["gateway_id"]) == (version, world.gateway_id)
            assert served["prediction_id"] in {p["prediction_id"] for p in stored}
            outputs = served["outputs"]
            assert set(outputs) == set(release.output_labels["probabilities"])
            assert sum(outputs.values()) == pytest.approx(1.0, abs=1e-4)
