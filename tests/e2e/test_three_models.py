"""Three models at once (issue 5 §9): component_failure, usage_pattern and anomaly side by side on one gateway.

Each is trained from the same simulated history by the production training (``train_from_history_file``),
released with ``iotsphere cloud release`` and promoted with ``iotsphere models promote``, so one director
document names all three. The running agent, fed over the real Mosquitto, activates and commits each on its
own probation and predicts with all three; the cloud stores them. Rolling one back
(``iotsphere models rollback anomaly``) changes only that one: the other two keep their versions, make no new
activation and keep predicting.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.training.cli import train_from_history_file
from edge_agent.config import ProbationPolicy
from firmware_sim.history import generate_history
from shared.messages import EventKind, PredictionType
from tests.e2e.world import BROKER, FIRST_PREDICTIONS_MINUTES, HEATERS, World, running_world
from tests.edge.mqtt_helpers import wait_for
from tests.rows import count

pytestmark = pytest.mark.mqtt

#: the quickest estimator of each type: what is tested here is serving, not model quality
CANDIDATES = {
    PredictionType.COMPONENT_FAILURE: ["logistic_regression"],
    PredictionType.USAGE_PATTERN: None,
    PredictionType.ANOMALY: ["isolation_forest"],
}
MODELS = [t.value for t in CANDIDATES]


def train_release_promote(world: World, history: Path, prediction_type: PredictionType, candidates) -> str:
    """Train, ``cloud release`` to the gateway and ``models promote``; wait until the agent activated it."""
    artifacts = train_from_history_file(
        history, world.config, horizon_days=7, candidates=candidates, echo=lambda _line: None,
        prediction_type=prediction_type,
    )  # fmt: skip
    version = world.release(artifacts).model_version
    world.wait_event(EventKind.ACTIVATE.value, world.latest_document().signed.sequence)
    world.iotsphere("models", "promote", prediction_type.value, version, "--reason", "cold start", "--mqtt", BROKER)
    return version


def versions_by_model(rows: list[dict]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row["model_name"], set()).add(row["model_version"])
    return found


def committed(world: World) -> set[tuple[str, str]]:
    return {(e["model_name"], e["model_version"]) for e in world.events() if e["kind"] == EventKind.COMMIT.value}


def test_three_models_serve_side_by_side_and_rolling_one_back_changes_only_that_one(tmp_path: Path):
    history = tmp_path / "history.npz"
    generate_history(heaters=60, days=60, seed=5).save(history)
    with running_world(tmp_path) as world:
        world.agent.probation.policy = ProbationPolicy(predictions_required=HEATERS)  # one tick commits
        wait_for(lambda: count(world.db, "gateways", gateway_id=world.gateway_id) == 1, 30, "status")

        first = {t.value: train_release_promote(world, history, t, c) for t, c in CANDIDATES.items()}
        assert set(world.latest_document().signed.models) == set(MODELS)
        assert {n: m.version for n, m in world.agent.store.active().items()} == first

        world.feed(FIRST_PREDICTIONS_MINUTES - 60)
        rows = world.next_tick(per_heater=3)
        assert versions_by_model(rows) == {name: {version} for name, version in first.items()}
        assert {(r["prediction_type"], r["device_id"]) for r in rows} == {
            (name, device) for name in MODELS for device in world.fleet.device_ids
        }
        wait_for(lambda: committed(world) >= set(first.items()), 30, "each model committed on its own probation")

        # a second anomaly release, then the operator rolls anomaly back
        second = train_release_promote(world, history, PredictionType.ANOMALY, ["isolation_forest_wide"])
        assert versions_by_model(world.next_tick(per_heater=3))["anomaly"] == {second}
        wait_for(lambda: ("anomaly", second) in committed(world), 30, "the second anomaly release committed")

        world.iotsphere("models", "rollback", "anomaly", "--reason", "too many alerts", "--mqtt", BROKER)
        document = world.latest_document()
        assert {n: m.version for n, m in document.signed.models.items()} == first
        world.wait_event(EventKind.ACTIVATE.value, document.signed.sequence)
        switched = [
            (e["model_name"], e["model_version"])
            for e in world.events(document.signed.sequence)
            if e["kind"] in (EventKind.DOWNLOAD.value, EventKind.INSTALL.value, EventKind.ACTIVATE.value)
        ]
        assert switched == [("anomaly", first["anomaly"])] * 2  # its download (release file) and activation only
        assert {n: m.version for n, m in world.agent.store.active().items()} == first

        rows = world.next_tick(per_heater=3)
        assert versions_by_model(rows) == {name: {version} for name, version in first.items()}
        states = {s.model_name: s for s in world.agent.status().models}
        assert {n: s.state for n, s in states.items()} == dict.fromkeys(MODELS, "committed")  # anomaly re-committed
        assert all(states[n].predictions["champion"] >= 3 * HEATERS for n in MODELS)
