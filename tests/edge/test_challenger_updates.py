"""Challengers through the updater, against a real TUF repository served over HTTP by the cloud API.

A challenger passes every check a release does (both repositories agree, hardened and sandboxed load,
golden vectors), is installed with its document, survives a restart, and stops when a document no
longer names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.updater import UpdateResult
from shared.director import Experiment, RejectRule
from shared.messages import EventKind
from tests.edge.hostile_models import CORPUS, hostile_release
from tests.edge.releases import build_release
from tests.edge.tuf_world import Cloud, Gateway, make_gateway, running_cloud

MODEL = "component_failure"
SHADOW = Experiment(experiment_id="exp-1", mode="shadow")
SPLIT = Experiment(experiment_id="exp-1", mode="split", challenger_percent=25)
NAN_OUTPUTS = next(h for h in CORPUS if h.rule is RejectRule.GOLDEN)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    with running_cloud(tmp_path / "cloud") as running:
        for version, seed in (("1", 0), ("2", 1), ("3", 2)):
            running.publish(build_release(version, seed=seed))
        running.publish(hostile_release("9", NAN_OUTPUTS.build()))
        yield running


def _events(gw: Gateway) -> list[tuple[EventKind, str | None, int | None, str]]:
    return [(e.kind, e.model_version, e.director_sequence, e.detail) for e in gw.events]


def test_a_challenger_is_checked_installed_started_and_runs_again_after_a_restart(tmp_path: Path, cloud: Cloud):
    gw = make_gateway(tmp_path / "gw", cloud)
    document = cloud.document(1, {MODEL: cloud.challenged(MODEL, "1", "2", SHADOW)})

    assert gw.updater.handle(document) is UpdateResult.APPLIED

    assert _events(gw) == [
        (EventKind.DOWNLOAD, "1", 1, ""),
        (EventKind.CHALLENGER, "2", 1, "downloading"),
        (EventKind.INSTALL, "1", 1, ""),
        (EventKind.ACTIVATE, "1", 1, "first version"),
        (EventKind.CHALLENGER, "2", 1, "started: experiment exp-1 shadow"),
    ]
    assert gw.active_version() == "1"
    assert gw.store.installed_versions(MODEL) == ["1", "2"]
    (state,) = gw.store.states()
    assert (state.active_version, state.challenger_version, state.experiment_id, state.experiment_mode) == (
        "1",
        "2",
        "exp-1",
        "shadow",
    )

    restarted = make_gateway(tmp_path / "gw", cloud)
    (challenger,) = restarted.store.challengers().values()
    assert (challenger.model.version, challenger.experiment) == ("2", SHADOW)
    assert restarted.updater.handle(document) is UpdateResult.UNCHANGED


def test_changing_the_experiment_or_the_challenger_and_then_dropping_it(tmp_path: Path, cloud: Cloud):
    gw = make_gateway(tmp_path / "gw", cloud)
    assert gw.updater.handle(cloud.document(1, {MODEL: cloud.challenged(MODEL, "1", "2", SHADOW)})).name == "APPLIED"
    gw.events.clear()

    # the same challenger in another mode: nothing downloaded, only the experiment changes
    assert gw.updater.handle(cloud.document(2, {MODEL: cloud.challenged(MODEL, "1", "2", SPLIT)})).name == "APPLIED"
    assert _events(gw) == [(EventKind.CHALLENGER, "2", 2, "started: experiment exp-1 split 25%")]
    assert gw.store.challengers()[MODEL].experiment == SPLIT

    # another challenger replaces it, and the one it replaces leaves the disk
    gw.events.clear()
    assert gw.updater.handle(cloud.document(3, {MODEL: cloud.challenged(MODEL, "1", "3", SPLIT)})).name == "APPLIED"
    assert [e[:3] for e in _events(gw)] == [(EventKind.CHALLENGER, "3", 3), (EventKind.CHALLENGER, "3", 3)]
    assert gw.store.challengers()[MODEL].model.version == "3"
    assert gw.store.installed_versions(MODEL) == ["1", "3"]

    # a document without the challenger stops it
    gw.events.clear()
    assert gw.updater.handle(cloud.document(4, {MODEL: cloud.desired(MODEL, "1")})) is UpdateResult.APPLIED
    assert _events(gw) == [(EventKind.CHALLENGER, "3", 4, "stopped: experiment exp-1")]
    assert gw.store.challengers() == {}
    assert gw.store.installed_versions(MODEL) == ["1"]
    assert gw.store.states()[0].challenger_version is None
    assert make_gateway(tmp_path / "gw", cloud).store.challengers() == {}  # stopped for good


def test_a_challenger_that_fails_a_check_refuses_the_whole_document(tmp_path: Path, cloud: Cloud):
    gw = make_gateway(tmp_path / "gw", cloud)
    assert gw.updater.handle(cloud.document(1, {MODEL: cloud.desired(MODEL, "1")})) is UpdateResult.APPLIED
    gw.events.clear()

    document = cloud.document(2, {MODEL: cloud.challenged(MODEL, "2", "9", SHADOW)})
    assert gw.updater.handle(document) is UpdateResult.REJECTED

    reject = gw.last_event()
    assert (reject.kind, reject.rule, reject.model_version) == (EventKind.REJECT, NAN_OUTPUTS.rule.value, "9")
    assert gw.active_version() == "1" and gw.store.challengers() == {}
    assert gw.store.installed_versions(MODEL) == ["1"]


def test_a_challenger_without_an_experiment_is_refused(tmp_path: Path, cloud: Cloud):
    gw = make_gateway(tmp_path / "gw", cloud)
    desired = cloud.challenged(MODEL, "1", "2", SHADOW).model_copy(update={"experiment": None})

    assert gw.updater.handle(cloud.document(1, {MODEL: desired})) is UpdateResult.REJECTED

    assert (gw.last_event().rule, gw.active_version()) == (RejectRule.DIRECTOR_FORMAT.value, None)


def test_promoting_the_challenger_activates_its_installed_bytes_without_downloading_them(tmp_path: Path, cloud: Cloud):
    gw = make_gateway(tmp_path / "gw", cloud)
    assert gw.updater.handle(cloud.document(1, {MODEL: cloud.challenged(MODEL, "1", "2", SHADOW)})).name == "APPLIED"
    gw.store.commit(MODEL, "1")
    gw.events.clear()

    assert gw.updater.handle(cloud.document(2, {MODEL: cloud.desired(MODEL, "2")})) is UpdateResult.APPLIED

    kinds = [e[:2] for e in _events(gw)]
    assert (EventKind.INSTALL, "2") not in kinds  # already installed as the challenger
    assert (EventKind.ACTIVATE, "2") in kinds and (EventKind.CHALLENGER, "2") in kinds
    assert gw.active_version() == "2" and gw.store.challengers() == {}
    assert gw.store.installed_versions(MODEL) == ["1", "2"]  # 1 is the last known good
