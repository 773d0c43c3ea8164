"""Operator rollback end to end (issue 5 §3): the registry CLI, a new director document, a running agent.

Versions 1 and 2 are released (``iotsphere cloud release``) and promoted (``iotsphere models promote``) in
turn, and the agent commits each after its probation; ``iotsphere models rollback`` then issues a director
document with a higher sequence naming version 1. The agent switches back and reports it over MQTT, the
registry's history (read over HTTP) says who rolled back what, when and why, and ``/api/deployments`` shows
the gateway committed on version 1 under the rollback's sequence.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud.releases import tuf_repo
from cloud.releases.model_rows import record_release
from edge_agent.config import ProbationPolicy
from shared.messages import EventKind
from tests.api.conftest import auth
from tests.e2e.world import BROKER, FIRST_PREDICTIONS_MINUTES, HEATERS, MODEL, World, running_world, write_artifacts
from tests.edge.mqtt_helpers import wait_for
from tests.edge.releases import BuiltRelease, build_serving_release
from tests.edge.tuf_world import PASSPHRASE
from tests.rows import count

pytestmark = pytest.mark.mqtt


def wait_commits(world: World, version: str, count: int) -> None:
    """Until the gateway has reported ``count`` commits of ``version`` (each after a passed probation)."""

    def commits() -> int:
        return sum(1 for e in world.events() if e["kind"] == EventKind.COMMIT.value and e["model_version"] == version)

    wait_for(lambda: commits() == count, 30, f"commit number {count} of version {version}")


def deployment(world: World) -> dict:
    response = world.http.get(f"/api/deployments/{world.gateway_id}", headers=auth(world.viewer_token))
    assert response.status_code == 200, response.text
    (found,) = response.json()
    return found


def release_and_promote(world: World, folder: Path, version: str, seed: int) -> int:
    """``cloud release`` to this gateway, then ``models promote``; the sequence the agent activated."""
    built = build_serving_release(version, seed=seed)
    world.release(write_artifacts(folder / version, built.release_bytes, built.onnx_bytes))
    activated = world.latest_document().signed.sequence
    world.wait_event(EventKind.ACTIVATE.value, activated)
    promoted = world.iotsphere(
        "models", "promote", MODEL, version, "--reason", f"version {version} is better", "--mqtt", BROKER
    )
    assert f"-> {version}" in promoted and world.gateway_id in promoted
    return activated


def released_undirected(world: World, built: BuiltRelease) -> None:
    """Signed into TUF and marked released in the registry, with no gateway directed to it yet."""
    record_release(world.db, tuf_repo.add_release(world.config, PASSPHRASE, built.release_bytes, built.onnx_bytes))


def committed_version_one(world: World, folder: Path) -> None:
    """Version 1 released, promoted, serving and committed; from then on each version commits on its next tick."""
    # one tick of this small site's predictions is a full probation
    world.agent.probation.policy = ProbationPolicy(predictions_required=HEATERS)
    wait_for(lambda: count(world.db, "gateways", gateway_id=world.gateway_id) == 1, 30, "status")
    release_and_promote(world, folder, "1", seed=0)
    world.feed(FIRST_PREDICTIONS_MINUTES - 60)
    assert {p["model_version"] for p in world.next_tick()} == {"1"}
    wait_commits(world, "1", 1)


def test_an_operator_rollback_reaches_the_agent_and_is_recorded_in_history_and_deployments(tmp_path: Path):
    started = datetime.now(UTC)
    with running_world(tmp_path) as world:
        committed_version_one(world, tmp_path / "artifacts")

        release_and_promote(world, tmp_path / "artifacts", "2", seed=1)
        assert {p["model_version"] for p in world.next_tick()} == {"2"}
        wait_commits(world, "2", 1)
        before = world.latest_document().signed.sequence
        assert (deployment(world)["version"], deployment(world)["state"]) == ("2", "committed")

        rolled = world.iotsphere("models", "rollback", MODEL, "--reason", "false alarms on version 2", "--mqtt", BROKER)
        assert f"rollback: {MODEL} for all 2 -> 1" in rolled

        document = world.latest_document()
        assert document.signed.sequence > before and document.signed.models[MODEL].version == "1"
        activated = world.wait_event(EventKind.ACTIVATE.value, document.signed.sequence)
        assert (activated["model_version"], activated["detail"]) == ("1", "previous 2")
        assert world.agent.store.active()[MODEL].version == "1"
        wait_for(lambda: world.reported_sequence() == document.signed.sequence, 30, "the rollback's sequence in status")
        assert {p["model_version"] for p in world.next_tick()} == {"1"}
        wait_commits(world, "1", 2)

        history = world.http.get(f"/api/models/{MODEL}/history", headers=auth(world.viewer_token))
        assert history.status_code == 200, history.text
        latest = history.json()[0]
        assert (latest["action"], latest["from_version"], latest["to_version"]) == ("rollback", "2", "1")
        assert latest["reason"] == "false alarms on version 2" and latest["actor"].startswith("cli:")
        assert started <= datetime.fromisoformat(latest["at"]) <= datetime.now(UTC)

        after = deployment(world)
        assert (after["version"], after["director_sequence"], after["state"]) == (
            "1",
            document.signed.sequence,
            "committed",
        )
        assert after["gateway_sequence"] == document.signed.sequence
        assert datetime.fromisoformat(after["probation_at"]) <= datetime.fromisoformat(after["committed_at"])
        shown = world.iotsphere("deployments", "show", world.gateway_id)
        row = next(line.split() for line in shown.splitlines() if line.startswith(world.gateway_id))
        assert row[1:5] == [MODEL, "1", f"#{document.signed.sequence}", "committed"], shown
