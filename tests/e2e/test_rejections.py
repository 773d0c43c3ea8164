"""Every update rejection rule through the running agent: reported up, and the previous model keeps serving.

tests/edge/test_updater.py and test_model_loader.py prove each rule on the updater and the loader alone;
here a bad update arrives as production sends it (a retained director document on MQTT), the agent's
reject event reaches the cloud database through the ingest worker, and the next feature tick's predictions
— stored by the cloud and read back through the REST API — still come from version 1. One world serves the
whole module: a rejected document changes nothing the next case depends on, and each case uses its own
director sequence and release versions. Not here: ``tuf.refresh`` (through the agent in
tests/edge/test_agent_updates.py), ``onnx.size`` (a 64 MB model) and ``activate`` (a failing disk), which
tests/edge covers on the loader and the model store.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import onnx
import pytest
from onnx import external_data_helper, helper

from shared.director import RejectRule
from shared.features import FEATURE_NAMES, FEATURE_SET_VERSION
from shared.messages import EventKind
from shared.signing import generate_private_key
from tests.e2e.world import FIRST_PREDICTIONS_MINUTES, HEATERS, MODEL, World, running_world, write_artifacts
from tests.edge.releases import BuiltRelease, build_release, build_serving_release

pytestmark = pytest.mark.mqtt

GOOD = "1"
#: a good release in TUF, named by the documents whose fault is in the director part
OTHER = "2"
_versions = itertools.count(10)
_sequences = itertools.count(10)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Version 1 released through the CLI, active and serving; the cloud's first document is kept for replay."""
    folder = tmp_path_factory.mktemp("e2e-rejections")
    with running_world(folder) as running:
        v1 = build_serving_release(GOOD)
        artifacts = write_artifacts(folder / "artifacts" / GOOD, v1.release_bytes, v1.onnx_bytes)
        running.release(artifacts)
        running.wait_event(EventKind.ACTIVATE.value, 1)
        running.release(artifacts)  # the cloud re-issues the same desired state with a higher sequence
        assert running.latest_document().signed.sequence == 2
        running.cloud.publish(build_serving_release(OTHER, seed=1))
        running.feed(FIRST_PREDICTIONS_MINUTES - 60)
        assert {p["model_version"] for p in running.next_tick()} == {GOOD}
        assert running.reported_sequence() == 2
        yield running


def _bad_model(change: Callable[[onnx.ModelProto], None]) -> bytes:
    model = onnx.load_from_string(build_serving_release(GOOD).onnx_bytes)
    change(model)
    return model.SerializeToString()


def _external_initializer(model: onnx.ModelProto) -> None:
    tensor = helper.make_tensor("weights", onnx.TensorProto.FLOAT, [4], bytes(16), raw=True)
    external_data_helper.set_external_data(tensor, location="../../../../etc/shadow", length=16)
    tensor.ClearField("raw_data")  # the values would be read from that file
    model.graph.initializer.append(tensor)


def _custom_domain(model: onnx.ModelProto) -> None:
    model.opset_import.append(helper.make_opsetid("com.example.evil", 1))


def _newer_opset(model: onnx.ModelProto) -> None:
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = 99


def _disallowed_operator(model: onnx.ModelProto) -> None:
    # standard domain, but not on the allow-list: random output breaks the golden contract and probation
    model.graph.node.append(helper.make_node("RandomUniformLike", ["features"], ["noise"]))


def _release_serving(version: str, onnx_bytes: bytes) -> BuiltRelease:
    """A release that describes the good model for the agent's feature set, shipping other bytes."""
    return build_release(
        version, onnx_bytes=onnx_bytes, feature_set=FEATURE_SET_VERSION, feature_names=tuple(FEATURE_NAMES)
    )


def _stored_model(world: World, version: str) -> Path:
    (path,) = (world.config.tuf_dir / "targets" / "models" / MODEL / version).glob("*.model.onnx")
    return path


@dataclass(frozen=True)
class Case:
    rule: RejectRule
    #: the bad document for this world and sequence; returns the payload and the sequence it carries
    document: Callable[[World, int], tuple[bytes, int]]


def _signed(world: World, sequence: int, version: str, **kwargs) -> tuple[bytes, int]:
    desired = {MODEL: world.cloud.desired(MODEL, version)}
    return world.cloud.document(sequence, desired, gateway=kwargs.pop("gateway", world.gateway_id), **kwargs), sequence


def _published(world: World, sequence: int, built: BuiltRelease, tamper: Callable[[Path], None] | None = None):
    """Sign ``built`` into TUF (as a leaked signing key could), optionally alter the served file, and direct to it."""
    world.cloud.publish(built)
    if tamper is not None:
        tamper(_stored_model(world, built.release.model_version))
    return _signed(world, sequence, built.release.model_version)


def _director_says_longer(world: World, sequence: int) -> tuple[bytes, int]:
    real = world.cloud.desired(MODEL, OTHER)
    longer = real.model_copy(update={"model_length": real.model_length + 1024})
    return world.cloud.document(sequence, {MODEL: longer}, gateway=world.gateway_id), sequence


def _reversed(path: Path) -> None:
    path.write_bytes(bytes(reversed(path.read_bytes())))  # same length, other bytes


def _padded(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\0" * 1024)  # a server trying to make the gateway read endlessly


def _malformed(world: World, sequence: int) -> tuple[bytes, int]:
    return json.dumps({"signed": {"sequence": sequence}, "signatures": []}).encode(), sequence


CASES = {
    "malformed director document": Case(RejectRule.DIRECTOR_FORMAT, _malformed),
    "forged director signature": Case(
        RejectRule.DIRECTOR_SIGNATURE, lambda w, s: _signed(w, s, OTHER, key=generate_private_key())
    ),
    "expired director document": Case(
        RejectRule.DIRECTOR_EXPIRED, lambda w, s: _signed(w, s, OTHER, expires_in=timedelta(seconds=-5))
    ),
    "replayed lower sequence": Case(RejectRule.DIRECTOR_SEQUENCE, lambda w, s: (w.issued[0], 1)),
    "another gateway's document": Case(RejectRule.DIRECTOR_GATEWAY, lambda w, s: _signed(w, s, OTHER, gateway="gw-x")),
    "target bytes altered on the server": Case(
        RejectRule.DOWNLOAD,
        lambda w, s: _published(w, s, build_serving_release(str(next(_versions)), seed=2), _reversed),
    ),
    "director declares a larger target than TUF": Case(RejectRule.HASH_MISMATCH, _director_says_longer),
    "server serves more bytes than TUF declares": Case(
        RejectRule.DOWNLOAD,
        lambda w, s: _published(w, s, build_serving_release(str(next(_versions)), seed=3), _padded),
    ),
    "ONNX with external data": Case(
        RejectRule.ONNX_EXTERNAL_DATA,
        lambda w, s: _published(w, s, _release_serving(str(next(_versions)), _bad_model(_external_initializer))),
    ),
    "not an ONNX file": Case(
        RejectRule.ONNX_LOAD, lambda w, s: _published(w, s, _release_serving(str(next(_versions)), b"\xff" * 64))
    ),
    "operator domain outside ai.onnx and ai.onnx.ml": Case(
        RejectRule.ONNX_DOMAIN,
        lambda w, s: _published(w, s, _release_serving(str(next(_versions)), _bad_model(_custom_domain))),
    ),
    "opset newer than the agent vetted": Case(
        RejectRule.ONNX_OPSET,
        lambda w, s: _published(w, s, _release_serving(str(next(_versions)), _bad_model(_newer_opset))),
    ),
    "disallowed operator": Case(
        RejectRule.ONNX_OPERATOR,
        lambda w, s: _published(w, s, _release_serving(str(next(_versions)), _bad_model(_disallowed_operator))),
    ),
    "schema mismatch (another feature set)": Case(
        RejectRule.SCHEMA, lambda w, s: _published(w, s, build_release(str(next(_versions)), seed=4))
    ),
    "golden-vector mismatch": Case(
        RejectRule.GOLDEN,
        lambda w, s: _published(
            w, s, _release_serving(str(next(_versions)), build_serving_release("other-weights", seed=7).onnx_bytes)
        ),
    ),
}


def _installs_and_activations(world: World) -> list[dict]:
    return [e for e in world.events() if e["kind"] in (EventKind.INSTALL.value, EventKind.ACTIVATE.value)]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_bad_update_is_reported_by_rule_and_the_previous_model_keeps_serving(world: World, case: Case):
    assert world.agent.store.active()[MODEL].version == GOOD
    changes = _installs_and_activations(world)
    payload, sequence = case.document(world, next(_sequences))

    world.send_document(payload)
    event = world.wait_event(EventKind.REJECT.value, sequence)

    assert event["rule"] == case.rule.value, event["detail"]
    served = world.next_tick()
    assert _installs_and_activations(world) == changes
    assert len(served) == HEATERS and {p["model_version"] for p in served} == {GOOD}
    for device_id in world.fleet.device_ids:  # the API's newest prediction per heater is from this tick
        latest = world.served_prediction(device_id)
        assert latest["model_version"] == GOOD and latest["prediction_id"] in {p["prediction_id"] for p in served}
    assert world.reported_sequence() == 2  # the gateway's status still names the last document it accepted
