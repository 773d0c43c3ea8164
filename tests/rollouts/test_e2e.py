"""A staged rollout end to end with a running edge agent: it completes, and a bad release is rolled back.

The cloud is the production one (``cloud init``, TUF over HTTP, ingest from the real Mosquitto, the CLI); the
agent verifies, activates and commits what its director documents name, and its events decide each stage.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.registry import MLModelRegistry
from shared.director import RejectRule
from shared.messages import EventKind
from tests.api.conftest import auth
from tests.e2e.test_operator_rollback import committed_version_one, released_undirected, wait_commits
from tests.e2e.world import BROKER, MODEL, running_world
from tests.edge.mqtt_helpers import wait_for
from tests.edge.releases import build_release, build_serving_release

pytestmark = pytest.mark.mqtt


def test_a_rollout_completes_on_a_running_agent_and_a_rejected_one_is_rolled_back(tmp_path: Path):
    with running_world(tmp_path) as world:
        committed_version_one(world, tmp_path / "artifacts")

        released_undirected(world, build_serving_release("2", seed=1))
        started = world.iotsphere(
            "rollouts", "start", MODEL, "2", "--reason", "beats 1", "--stage", "100", "--mqtt", BROKER
        )
        assert f"#1 {MODEL}=2 for all device types: running" in started
        directed = world.latest_document().signed.sequence
        world.wait_event(EventKind.ACTIVATE.value, directed)
        assert "running" in world.iotsphere("rollouts", "advance", "1", "--mqtt", BROKER), "on probation: wait"
        assert {p["model_version"] for p in world.next_tick()} == {"2"}
        wait_commits(world, "2", 1)
        assert ": completed [100% passed]" in world.iotsphere("rollouts", "advance", "1", "--mqtt", BROKER)
        history = world.http.get(f"/api/models/{MODEL}/history", headers=auth(world.viewer_token)).json()
        assert (history[0]["from_version"], history[0]["to_version"]) == ("1", "2")
        assert history[0]["actor"].endswith("via rollout #1")
        assert world.latest_document().signed.sequence == directed, "completion re-directs nobody"

        released_undirected(world, build_release("3", seed=4))  # another feature set: the agent refuses it
        world.iotsphere("rollouts", "start", MODEL, "3", "--reason", "try 3", "--stage", "100", "--mqtt", BROKER)
        bad = world.latest_document().signed.sequence
        world.wait_event(EventKind.REJECT.value, bad)
        halted = world.iotsphere("rollouts", "advance", "2", "--mqtt", BROKER)
        assert ": rolled_back [100% failed]" in halted and f"rejected ([{RejectRule.SCHEMA.value}]" in halted

        back = world.latest_document()
        assert back.signed.sequence > bad and back.signed.models[MODEL].version == "2"
        wait_for(lambda: world.reported_sequence() == back.signed.sequence, 30, "the rollback document accepted")
        assert {p["model_version"] for p in world.next_tick()} == {"2"}
        assert MLModelRegistry(world.db).get_active_model(MODEL)["model_version"] == "2"
