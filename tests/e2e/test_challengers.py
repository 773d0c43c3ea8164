"""Challengers on the edge end to end (issue 5 §7): a running agent, the real Mosquitto, ingest into SQLite.

Version 1 is released to the gateway with ``iotsphere cloud release``; version 2 is signed into TUF only.
Director documents naming version 2 as the challenger (issued and signed by the cloud's director code,
published retained) then run it in shadow mode — every heater gets both predictions under one
``prediction_id``, the cloud stores both arms and serves the champion's — and in split mode, where each
heater's arm is ``shared.experiments.arm_for`` of its device id. A document without the challenger stops
it. The per-arm counts reach the cloud in the retained status. A challenger that passes every check but gives
NaN outputs on real windows (no imputer) costs the champion nothing and is reported as a ``health`` event.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cloud.releases import director
from shared.director import DesiredModel, Experiment
from shared.experiments import arm_for
from shared.messages import Arm, EventKind
from tests.e2e.world import FIRST_PREDICTIONS_MINUTES, HEATERS, MODEL, World, running_world, write_artifacts
from tests.edge.mqtt_helpers import wait_for
from tests.edge.releases import build_serving_release
from tests.rows import rows_of

pytestmark = pytest.mark.mqtt


def direct(world: World, desired: DesiredModel) -> int:
    """Issue, sign and publish (retained) a document with ``desired`` for the model; its sequence."""
    (document,) = director.issue_documents(
        world.config, world.db, world.cloud.director_key, [world.gateway_id], updates={MODEL: desired}
    ).documents
    world.send_document(document.to_json())
    return document.signed.sequence


def cloud_status_models(world: World) -> dict[str, dict]:
    [row] = rows_of(world.db, "gateways", gateway_id=world.gateway_id)
    return {m["model_name"]: m for m in json.loads(row["status_json"])["models"]}


def mixed_split(world: World, percent: int) -> Experiment:
    """A split experiment whose id puts this site's heaters on both arms."""
    for n in range(100):
        experiment = Experiment(experiment_id=f"exp-split-{n}", mode="split", challenger_percent=percent)
        arms = {arm_for(d, experiment.experiment_id, percent) for d in world.fleet.device_ids}
        if len(arms) == 2:
            return experiment
    raise AssertionError("no experiment id splits the heaters")


def test_shadow_then_split_then_stopped(tmp_path: Path):
    with running_world(tmp_path) as world:
        one = build_serving_release("1", seed=0)
        world.release(write_artifacts(tmp_path / "v1", one.release_bytes, one.onnx_bytes))
        two = build_serving_release("2", seed=1)
        world.cloud.publish(two)

        shadow = direct(
            world, world.cloud.challenged(MODEL, "1", "2", Experiment(experiment_id="exp-1", mode="shadow"))
        )
        started = world.wait_event(EventKind.CHALLENGER.value, shadow)
        wait_for(lambda: world.agent.store.challengers().get(MODEL) is not None, 30, "the challenger running")
        assert started["model_version"] == "2"

        world.feed(FIRST_PREDICTIONS_MINUTES - 60)
        rows = world.next_tick(per_heater=2)
        by_device: dict[str, dict[str, dict]] = {}
        for row in rows:
            by_device.setdefault(row["device_id"], {})[row["arm"]] = row
        assert set(by_device) == set(world.fleet.device_ids)
        for device_id, arms in by_device.items():
            assert set(arms) == {Arm.CHAMPION.value, Arm.SHADOW.value}
            assert arms["champion"]["prediction_id"] == arms["shadow"]["prediction_id"]
            assert (arms["champion"]["model_version"], arms["shadow"]["model_version"]) == ("1", "2")
            served = world.served_prediction(device_id)
            assert (served["model_version"], served["prediction_id"]) == ("1", arms["champion"]["prediction_id"])

        world.agent.publish_status()
        wait_for(
            lambda: cloud_status_models(world)[MODEL]["predictions"].get("shadow") == HEATERS,
            30,
            "per-arm counts in the cloud's copy of the status",
        )
        reported = cloud_status_models(world)[MODEL]
        assert (reported["challenger_version"], reported["experiment_mode"]) == ("2", "shadow")

        experiment = mixed_split(world, 50)
        split = direct(world, world.cloud.challenged(MODEL, "1", "2", experiment))
        world.wait_event(EventKind.CHALLENGER.value, split)
        rows = world.next_tick()
        expected = {d: arm_for(d, experiment.experiment_id, 50).value for d in world.fleet.device_ids}
        assert {r["device_id"]: r["arm"] for r in rows} == expected
        assert {r["arm"]: r["model_version"] for r in rows} == {"champion": "1", "challenger": "2"}

        stopped = direct(world, world.cloud.desired(MODEL, "1"))
        event = world.wait_event(EventKind.CHALLENGER.value, stopped)
        assert event["detail"].startswith("stopped")
        rows = world.next_tick()
        assert {(r["arm"], r["model_version"]) for r in rows} == {("champion", "1")}
        assert world.agent.store.challengers() == {}


def test_a_challenger_failing_in_service_leaves_every_champion_prediction_and_is_reported(tmp_path: Path):
    with running_world(tmp_path) as world:
        one = build_serving_release("1", seed=0)
        world.release(write_artifacts(tmp_path / "v1", one.release_bytes, one.onnx_bytes))
        world.cloud.publish(build_serving_release("2", seed=1, impute=False))  # NaN outputs on real windows
        sequence = direct(
            world, world.cloud.challenged(MODEL, "1", "2", Experiment(experiment_id="exp-2", mode="shadow"))
        )
        world.wait_event(EventKind.CHALLENGER.value, sequence)
        wait_for(lambda: world.agent.store.challengers().get(MODEL) is not None, 30, "the challenger running")

        world.feed(FIRST_PREDICTIONS_MINUTES - 60)
        world.feed(60)
        boundary = world.boundary()
        wait_for(lambda: len(world.predictions(boundary)) >= HEATERS, 30, "the champion's predictions")
        rows = world.predictions(boundary)
        champion = [r for r in rows if r["arm"] == "champion"]
        assert sorted(r["device_id"] for r in champion) == sorted(world.fleet.device_ids)
        assert all(r["model_version"] == "1" for r in champion)
        for row in champion:
            assert all(math.isfinite(v) for v in json.loads(row["outputs_json"]).values())

        wait_for(lambda: any(e["kind"] == EventKind.HEALTH.value for e in world.events()), 30, "a health event")
        health = [e for e in world.events() if e["kind"] == EventKind.HEALTH.value]
        assert [(e["model_version"], e["detail"].split(":")[0]) for e in health] == [
            ("2", "challenger (shadow) failed, champion unaffected")
        ]
        sent, failed = world.agent.serving.counts(MODEL)
        assert failed["shadow"] > 0 and sent.get("shadow", 0) + failed["shadow"] == sent["champion"]
        assert sum(r["arm"] == "shadow" for r in rows) == sent.get("shadow", 0)
        assert world.agent.store.pointer(MODEL).version == "1" and world.agent.store.active()[MODEL].version == "1"
