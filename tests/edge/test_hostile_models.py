"""Hostile models signed and released through the real path are refused before activation, with their rule.

Each model of ``tests.edge.hostile_models.CORPUS`` is signed into a real TUF repository served over
HTTP by the cloud API (what a leaked signing key allows) and named by a correctly signed director
document. The gateway must refuse it with the corpus's rule before anything is installed, keep
serving version 1, and not grow: the first load and golden run happen in a capped child process
(``edge_agent.sandboxed_load``), so even a bomb built only from allowed operators costs the agent
nothing. One cloud and one gateway serve the module; each case has its own version and sequence.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edge_agent.model_checks import check_model_bytes
from edge_agent.model_loader import FeatureContract, LoaderLimits
from edge_agent.sandboxed_load import check_in_child
from edge_agent.updater import UpdateResult
from shared.director import DirectorRejected, RejectRule
from shared.messages import EventKind
from tests.edge.hostile_models import CORPUS, HostileModel, hostile_release
from tests.edge.releases import FEATURE_NAMES, FEATURE_SET, build_release
from tests.edge.tuf_world import Cloud, Gateway, make_gateway, running_cloud

MODEL = "component_failure"
#: the agent's own growth allowed while it refuses one model: the bomb alone would need 24 GiB
RSS_SLACK = 48 * 1024 * 1024
_sequences = itertools.count(2)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("hostile-cloud")) as running:
        running.publish(build_release("1"))
        yield running


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, cloud: Cloud) -> Gateway:
    gw = make_gateway(tmp_path_factory.mktemp("hostile-gw"), cloud)
    assert gw.updater.handle(cloud.document(1, {MODEL: cloud.desired(MODEL, "1")})) is UpdateResult.APPLIED
    return gw


def _rss() -> int:
    """This process's resident memory in bytes, from /proc."""
    status = Path("/proc/self/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("VmRSS:")]
    return int(line.split()[1]) * 1024


def test_the_corpus_covers_every_required_attack():
    assert len(CORPUS) >= 12
    assert len({model.name for model in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("hostile", CORPUS, ids=[model.name for model in CORPUS])
def test_a_hostile_model_is_refused_with_its_rule_and_version_1_keeps_serving(
    cloud: Cloud, gateway: Gateway, hostile: HostileModel
):
    version = f"{10 + CORPUS.index(hostile)}"
    cloud.publish(hostile_release(version, hostile.build()))
    pointer_before = gateway.store.pointer(MODEL)
    gateway.events.clear()

    rss_before = _rss()
    result = gateway.updater.handle(cloud.document(next(_sequences), {MODEL: cloud.desired(MODEL, version)}))
    growth = _rss() - rss_before

    assert result is UpdateResult.REJECTED
    # refused before activation: no install, no activate (a download may have started)
    ((event),) = [e for e in gateway.events if e.kind is not EventKind.DOWNLOAD]
    assert (event.kind, event.rule, event.model_version) == (EventKind.REJECT, hostile.rule.value, version)
    assert event.detail
    assert growth < RSS_SLACK, f"the agent grew by {growth / 2**20:.0f} MiB"
    assert gateway.store.installed_versions(MODEL) == ["1"]
    assert gateway.store.pointer(MODEL) == pointer_before
    served = gateway.store.active()[MODEL]
    golden = build_release("1").release.golden
    assert served.version == "1"
    np.testing.assert_allclose(
        served.run(np.asarray(golden.inputs, dtype=np.float32))["probabilities"],
        golden.expected["probabilities"],
        atol=golden.abs_tolerance,
    )


def test_the_allowed_operator_bomb_passes_every_static_check_and_only_the_capped_child_stops_it():
    (bomb,) = [model for model in CORPUS if model.rule is RejectRule.ONNX_RESOURCES]
    data = bomb.build()
    check_model_bytes(data)  # allow-lists, caps and the ONNX checker see nothing wrong
    features = FeatureContract(FEATURE_SET, tuple(FEATURE_NAMES))
    with pytest.raises(DirectorRejected) as caught:
        check_in_child(data, hostile_release("bomb", data).release_bytes, features, LoaderLimits())
    assert caught.value.rule is RejectRule.ONNX_RESOURCES
    assert "more than 1024 MiB of memory" in caught.value.detail


def test_a_good_release_passes_the_child_and_a_child_past_its_deadline_is_refused():
    built = build_release("1")
    features = FeatureContract(FEATURE_SET, tuple(FEATURE_NAMES))
    check_in_child(built.onnx_bytes, built.release_bytes, features, LoaderLimits())
    with pytest.raises(DirectorRejected) as caught:  # an interpreter cannot even start in 10 ms
        check_in_child(built.onnx_bytes, built.release_bytes, features, LoaderLimits(child_timeout=0.01))
    assert caught.value.rule is RejectRule.ONNX_RESOURCES
    assert "did not finish within 0.01 s" in caught.value.detail
