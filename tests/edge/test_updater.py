"""The updater against a real TUF repository (cloud.releases) served over real HTTP by the cloud API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import onnx
import pytest
from onnx import helper

from cloud.releases import keystore, rotation
from edge_agent.updater import TRANSIENT_RULES, UpdateResult
from shared.director import RejectRule
from shared.messages import EventKind
from shared.signing import generate_private_key
from tests.edge.releases import build_release
from tests.edge.tuf_world import PASSPHRASE, Cloud, Gateway, make_gateway, running_cloud

MODEL = "component_failure"


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    with running_cloud(tmp_path / "cloud") as running:
        running.publish(build_release("1", seed=0))
        running.publish(build_release("2", seed=1))
        yield running


@pytest.fixture
def gateway(tmp_path: Path, cloud: Cloud) -> Gateway:
    """A gateway already running version 1 (director sequence 1)."""
    gw = make_gateway(tmp_path / "gw", cloud)
    assert gw.updater.handle(cloud.document(1, {MODEL: cloud.desired(MODEL, "1")})) is UpdateResult.APPLIED
    gw.events.clear()
    return gw


def _rejected_with_active(gw: Gateway, payload: bytes, active: str) -> str:
    result = gw.updater.handle(payload)
    event = gw.last_event()
    assert event.kind is EventKind.REJECT
    assert result is (UpdateResult.DEFERRED if event.rule in TRANSIENT_RULES else UpdateResult.REJECTED)
    assert gw.active_version() == active  # keeps serving what it had
    return event.rule


def _rejected_with(gw: Gateway, payload: bytes) -> str:
    return _rejected_with_active(gw, payload, "1")


def test_a_valid_document_installs_and_activates(tmp_path: Path, cloud: Cloud):
    gw = make_gateway(tmp_path / "fresh", cloud)
    assert gw.updater.handle(cloud.document(4, {MODEL: cloud.desired(MODEL, "2")})) is UpdateResult.APPLIED
    assert [(e.kind, e.model_version, e.director_sequence) for e in gw.events] == [
        (EventKind.DOWNLOAD, "2", 4),
        (EventKind.INSTALL, "2", 4),
        (EventKind.ACTIVATE, "2", 4),
    ]
    assert gw.active_version() == "2" and gw.updater.accepted_sequence == 4

    restarted = make_gateway(tmp_path / "fresh", cloud)  # state and models survive a restart
    assert restarted.active_version() == "2" and restarted.updater.accepted_sequence == 4


def test_the_same_document_redelivered_is_a_no_op(cloud: Cloud, gateway: Gateway):
    document = cloud.document(2, {MODEL: cloud.desired(MODEL, "2")})
    assert gateway.updater.handle(document) is UpdateResult.APPLIED
    count = len(gateway.events)
    assert gateway.updater.handle(document) is UpdateResult.UNCHANGED
    assert len(gateway.events) == count and gateway.active_version() == "2"


def test_director_rules_come_first_in_their_order(cloud: Cloud, gateway: Gateway):
    desired = {MODEL: cloud.desired(MODEL, "2")}
    assert _rejected_with(gateway, b'{"signed": ') == RejectRule.DIRECTOR_FORMAT
    impostor = cloud.document(5, desired, key=generate_private_key())
    assert _rejected_with(gateway, impostor) == RejectRule.DIRECTOR_SIGNATURE
    # expired, replayed and for another gateway at once: expiry is reported first
    stale = cloud.document(1, desired, gateway="gw-999", expires_in=timedelta(seconds=-5))
    assert _rejected_with(gateway, stale) == RejectRule.DIRECTOR_EXPIRED
    assert _rejected_with(gateway, cloud.document(1, desired, gateway="gw-999")) == RejectRule.DIRECTOR_SEQUENCE
    assert _rejected_with(gateway, cloud.document(2, desired, gateway="gw-999")) == RejectRule.DIRECTOR_GATEWAY
    assert gateway.last_event().director_sequence == 2


def test_tuf_refresh_failure_is_reported(tmp_path: Path, cloud: Cloud, gateway: Gateway):
    document = cloud.document(2, {MODEL: cloud.desired(MODEL, "2")})
    locked_out = make_gateway(tmp_path / "gw", cloud, api_key="not-a-key")  # same data folder, refused by the API
    assert _rejected_with(locked_out, document) == RejectRule.TUF_REFRESH
    assert "401" in locked_out.last_event().detail

    timestamp = cloud.config.tuf_dir / "metadata" / "timestamp.json"
    tampered = json.loads(timestamp.read_bytes())
    tampered["signed"]["version"] += 1  # a newer timestamp nobody signed
    timestamp.write_text(json.dumps(tampered))
    assert _rejected_with(gateway, document) == RejectRule.TUF_REFRESH


def test_director_and_tuf_must_agree(cloud: Cloud, gateway: Gateway):
    real = cloud.desired(MODEL, "2")
    wrong_hash = real.model_copy(update={"model_sha256": "0" * 64})
    assert _rejected_with(gateway, cloud.document(2, {MODEL: wrong_hash})) == RejectRule.HASH_MISMATCH
    assert gateway.last_event().model_version == "2"
    wrong_length = real.model_copy(update={"release_length": real.release_length + 1})
    assert _rejected_with(gateway, cloud.document(3, {MODEL: wrong_length})) == RejectRule.HASH_MISMATCH
    unpublished = real.model_copy(update={"version": "9", "model_target": "models/component_failure/9/model.onnx"})
    assert _rejected_with(gateway, cloud.document(4, {MODEL: unpublished})) == RejectRule.HASH_MISMATCH


def test_a_download_that_does_not_verify_is_refused(cloud: Cloud, gateway: Gateway):
    target = cloud.config.tuf_dir / "targets" / "models" / MODEL / "2"
    (stored,) = target.glob("*.model.onnx")
    stored.write_bytes(bytes(reversed(stored.read_bytes())))  # same length, other bytes
    assert _rejected_with(gateway, cloud.document(2, {MODEL: cloud.desired(MODEL, "2")})) == RejectRule.DOWNLOAD


def _bad_model(change) -> bytes:
    model = onnx.load_from_string(build_release().onnx_bytes)
    change(model)
    return model.SerializeToString()


def _custom_domain(model: onnx.ModelProto) -> None:
    model.opset_import.append(helper.make_opsetid("com.example.evil", 1))
    model.graph.node.append(helper.make_node("Exfiltrate", ["features"], ["x"], domain="com.example.evil"))


def test_signed_but_unsafe_or_wrong_models_are_refused_by_the_loader(cloud: Cloud, gateway: Gateway):
    """A leaked signing key can publish anything: the loader still refuses what is unsafe or wrong."""
    cases = {
        "3": (build_release("3", onnx_bytes=_bad_model(_custom_domain)), RejectRule.ONNX_DOMAIN),
        "4": (build_release("4", onnx_bytes=build_release("4", seed=7).onnx_bytes), RejectRule.GOLDEN),
    }
    wrong_schema = build_release("5", seed=3)
    wrong_schema = type(wrong_schema)(
        wrong_schema.onnx_bytes, wrong_schema.release.model_copy(update={"feature_set_version": "v-other"})
    )
    cases["5"] = (wrong_schema, RejectRule.SCHEMA)
    for sequence, (version, (built, rule)) in enumerate(cases.items(), start=2):
        cloud.publish(built)
        assert _rejected_with(gateway, cloud.document(sequence, {MODEL: cloud.desired(MODEL, version)})) == rule
        assert gateway.last_event().model_version == version


def test_operator_rollback_is_a_newer_document_naming_an_older_release(cloud: Cloud, gateway: Gateway):
    assert gateway.updater.handle(cloud.document(2, {MODEL: cloud.desired(MODEL, "2")})) is UpdateResult.APPLIED
    assert gateway.updater.handle(cloud.document(3, {MODEL: cloud.desired(MODEL, "1")})) is UpdateResult.APPLIED
    assert gateway.active_version() == "1"
    assert gateway.store.pointer(MODEL).previous == "2"
    # an attacker replaying the document that named version 2 gets nowhere
    assert (
        _rejected_with(gateway, cloud.document(2, {MODEL: cloud.desired(MODEL, "2")})) == RejectRule.DIRECTOR_SEQUENCE
    )


def test_a_rotated_director_key_is_learned_through_tuf(cloud: Cloud, gateway: Gateway):
    old_key = cloud.director_key
    rotation.rotate_key(cloud.config, PASSPHRASE, keystore.DIRECTOR)
    new_key = keystore.director_key(cloud.config.keys_dir, PASSPHRASE)

    desired = {MODEL: cloud.desired(MODEL, "2")}
    assert gateway.updater.handle(cloud.document(2, desired, key=new_key)) is UpdateResult.APPLIED
    assert gateway.active_version() == "2"
    # the retired key no longer signs anything this gateway accepts
    assert _rejected_with_active(gateway, cloud.document(3, desired, key=old_key), "2") == RejectRule.DIRECTOR_SIGNATURE
