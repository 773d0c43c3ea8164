"""Staged rollouts over real HTTP on the FastAPI app: roles, start, advance, halt, resume, roll back, read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.releases import director, keystore
from cloud.storage import open_database
from tests.api.conftest import ServedCloud, auth, served_cloud
from tests.deployments.conftest import Fleet
from tests.releases.conftest import PASSPHRASE
from tests.rollouts.conftest import GATEWAYS, NAME, Cloud

pytestmark = pytest.mark.mqtt


@pytest.fixture
def api(released: CloudConfig) -> Iterator[ServedCloud]:
    with served_cloud(released) as served:
        yield served


@pytest.fixture
def edge(released: CloudConfig) -> Iterator[Cloud]:
    """The gateways' side: events stored as ingest stores them (its own connection, as the ingest worker's)."""
    db = open_database(released.database_url)
    yield Cloud(released, db, None, Fleet(released, db, keystore.director_key(released.keys_dir, PASSPHRASE)))
    db.close()


def test_an_operator_runs_a_rollout_over_http_and_a_viewer_reads_it(api: ServedCloud, edge: Cloud):
    operator, viewer = auth(api.tokens[Role.OPERATOR]), auth(api.tokens[Role.VIEWER])
    body = {"model_name": NAME, "version": "2", "reason": "beats v1", "percentages": [20, 100]}

    assert api.http.post("/api/rollouts", json=body, headers=viewer).status_code == 403
    created = api.http.post("/api/rollouts", json=body, headers=operator)
    assert created.status_code == 201, created.text
    rollout = created.json()
    rollout_id, canary = rollout["rollout_id"], [g["gateway_id"] for g in rollout["stages"][0]["gateways"]]
    assert rollout["status"] == "running" and len(canary) == 2
    assert {g["state"] for g in rollout["stages"][0]["gateways"]} == {"pending"}
    assert all(edge.version_of(g)[0] == "2" for g in canary)
    again = api.http.post("/api/rollouts", json=body, headers=operator)
    assert again.status_code == 409 and "already has a live rollout" in again.json()["detail"]

    edge.commit(canary[0])
    halted = api.http.post(f"/api/rollouts/{rollout_id}/halt", json={"reason": "freeze"}, headers=operator)
    assert halted.json()["status"] == "halted"
    refused = api.http.post(f"/api/rollouts/{rollout_id}/halt", json={"reason": "again"}, headers=operator)
    assert refused.status_code == 409
    resumed = api.http.post(f"/api/rollouts/{rollout_id}/resume", json={"reason": "thaw"}, headers=operator)
    assert resumed.json()["status"] == "running"

    edge.reject(canary[1], rule="onnx.load", detail="operator not allowed")
    advanced = api.http.post(f"/api/rollouts/{rollout_id}/advance", headers=operator)
    assert advanced.status_code == 200, advanced.text
    assert advanced.json()["status"] == "rolled_back"
    assert "[onnx.load] operator not allowed" in advanced.json()["outcome"]
    assert all(edge.version_of(g)[0] == "1" for g in GATEWAYS)

    read = api.http.get(f"/api/rollouts/{rollout_id}", headers=viewer).json()
    assert [d["decision"] for d in read["decisions"]] == [
        "started",
        "stage_started",
        "halted",
        "resumed",
        "stage_failed",
        "rolled_back",
    ]
    assert (
        read["decisions"][2]["actor"] == f"key:{api.tokens[Role.OPERATOR].split('_')[1]}"
        and read["decisions"][2]["reason"] == "freeze"
    )
    assert {g["rollback_sequence"] for g in read["stages"][0]["gateways"]} == {
        director.latest_document(edge.db, g).signed.sequence for g in canary
    }
    listed = api.http.get("/api/rollouts", params={"status": "rolled_back"}, headers=viewer).json()
    assert [r["rollout_id"] for r in listed] == [rollout_id]
    assert api.http.get("/api/rollouts", params={"status": "running"}, headers=viewer).json() == []
    assert api.http.get("/api/rollouts/999", headers=viewer).status_code == 404
    second = api.http.post("/api/rollouts", json=body, headers=operator).json()["rollout_id"]
    rolled = api.http.post(f"/api/rollouts/{second}/rollback", json={"reason": "wrong week"}, headers=operator)
    assert (rolled.json()["status"], rolled.json()["outcome"]) == ("rolled_back", "wrong week")
    assert all(edge.version_of(g)[0] == "1" for g in GATEWAYS)
    cancelled = api.http.post(f"/api/rollouts/{second}/cancel", json={"reason": "x"}, headers=operator)
    assert cancelled.status_code == 409 and "only a running or halted rollout" in cancelled.json()["detail"]
    bad_plan = {**body, "percentages": [50, 20]}
    refused_plan = api.http.post("/api/rollouts", json=bad_plan, headers=operator)
    assert refused_plan.status_code == 409 and "must rise strictly" in refused_plan.json()["detail"]
