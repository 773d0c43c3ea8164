"""An automatic rollback follows the registry's one evaluation gate: it never puts back a version that failed it.

The gateways ran version 2 (directed to it by hand) before a rollout of version 3; version 2 then failed its
evaluation. When the canary fails, the canary goes back to version 1, the newest earlier version the gate admits,
and the decision says so; with no such version the gateways keep version 3 and the decision says that.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud.registry import MLModelRegistry
from cloud.releases import tuf_repo
from cloud.releases.model_rows import record_release
from cloud.releases.service import ReleaseService
from cloud.rollouts import store
from cloud.rollouts.store import RolloutStatus
from shared.messages import EventKind
from tests.releases.conftest import PASSPHRASE, write_artifacts
from tests.rollouts.conftest import GATEWAYS, NAME, PLAN, Cloud
from tests.rows import update_rows

pytestmark = pytest.mark.mqtt


@pytest.fixture
def on_failed_version(cloud: Cloud, tmp_path: Path, onnx_models: dict[int, bytes]) -> Cloud:
    """Version 3 released; every gateway directed to version 2, which then failed its evaluation."""
    made = write_artifacts(tmp_path / "artifacts" / "3", NAME, "3", onnx_models[1])
    record_release(cloud.db, tuf_repo.add_release(cloud.config, PASSPHRASE, made.release_json, made.onnx_bytes))
    assert not ReleaseService(cloud.config, PASSPHRASE).direct_gateways(cloud.db, NAME, "2", GATEWAYS).failures
    MLModelRegistry(cloud.db).record_evaluation(NAME, "2", passed=False, details={"mean_roc_auc": 0.51})
    return cloud


def _fail_canary(cloud: Cloud) -> tuple[int, list[str]]:
    rollout = cloud.rollouts.start(NAME, "3", actor="ops", reason="retrained", plan=PLAN)
    canary = rollout.stages[0].gateway_ids
    for gateway_id in canary:
        _, sequence = cloud.version_of(gateway_id)
        cloud.fleet.report(gateway_id, EventKind.REJECT, datetime.now(UTC), "3", sequence, rule="golden_vectors")
    assert cloud.rollouts.advance(rollout.rollout_id, actor="tests").status is RolloutStatus.ROLLED_BACK
    return rollout.rollout_id, canary


def test_the_canary_goes_back_to_the_newest_earlier_version_that_passed(on_failed_version: Cloud):
    cloud = on_failed_version
    rollout_id, canary = _fail_canary(cloud)

    assert {cloud.version_of(g)[0] for g in canary} == {"1"}, "never back onto version 2, which failed its gate"
    details = store.decisions(cloud.db, rollout_id)[-1]["details"]
    assert sorted(details["to"]["1"]) == sorted(canary)
    assert "failed evaluation: rolled back to version 1" in details["instead_of"]["2"]


def test_with_no_earlier_version_admitted_the_canary_keeps_the_new_version_and_says_so(on_failed_version: Cloud):
    cloud = on_failed_version
    released = {"status": "released", "production_device_type": None}
    update_rows(cloud.db, "models", {"model_name": NAME, "model_version": "1"}, released)
    MLModelRegistry(cloud.db).record_evaluation(NAME, "1", passed=False, details={})
    rollout_id, canary = _fail_canary(cloud)

    assert {cloud.version_of(g)[0] for g in canary} == {"3"}
    details = store.decisions(cloud.db, rollout_id)[-1]["details"]
    assert sorted(details["left_without_previous_version"]) == sorted(canary) and details["to"] == {}
    assert "no earlier version passed" in details["instead_of"]["2"]
