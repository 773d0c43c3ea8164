"""An A/B test over real HTTP: roles, create, start (documents on the real Mosquitto), watch, early refusal, stop."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.storage import open_database
from shared.director import verify_director
from tests.api.conftest import ServedCloud, auth, served_cloud
from tests.experiments.conftest import GATEWAYS, NAME, Lab
from tests.registry.test_http import retained_document, trusted_director_keys
from tests.rows import rows_of

pytestmark = pytest.mark.mqtt


@pytest.fixture
def cloud(production: CloudConfig) -> Iterator[ServedCloud]:
    with served_cloud(production) as served:
        yield served


def test_operators_run_an_experiment_and_viewers_watch_it(cloud: ServedCloud, lab: Lab):
    operator, viewer = auth(cloud.tokens[Role.OPERATOR]), auth(cloud.tokens[Role.VIEWER])
    body = {"model_name": NAME, "challenger_version": "2", "mode": "split", "challenger_percent": 25}

    assert cloud.http.post("/api/experiments", json=body, headers=viewer).status_code == 403
    same = cloud.http.post("/api/experiments", json={**body, "challenger_version": "1"}, headers=operator)
    assert same.status_code == 400 and "different version" in same.json()["detail"]
    topic_breaking = cloud.http.post("/api/experiments", json={**body, "gateway_ids": ["gw/+"]}, headers=operator)
    assert topic_breaking.status_code == 400 and "invalid gateway id" in topic_breaking.json()["detail"]
    created = cloud.http.post("/api/experiments", json=body, headers=operator)
    assert created.status_code == 201, created.text
    experiment = created.json()
    experiment_id = experiment["experiment_id"]
    assert (experiment["status"], experiment["champion_version"], experiment["metric"]) == ("draft", "1", "error_rate")
    assert experiment["created_by"].startswith("key:")

    started = cloud.http.post(f"/api/experiments/{experiment_id}/start", json={"reason": "go"}, headers=operator)
    assert started.status_code == 200, started.text
    assert sorted(d["gateway_id"] for d in started.json()["directed"]) == sorted(GATEWAYS)
    trusted = trusted_director_keys(cloud.config)
    for gateway_id in GATEWAYS:
        document = retained_document(cloud.config, gateway_id)
        model = verify_director(document.to_json(), trusted, gateway_id, None).signed.models[NAME]
        assert (model.challenger.version, model.experiment.experiment_id) == ("2", experiment_id)

    lab.feed(lab.service.store.get(experiment_id), devices=40, error_rate={"champion": 0.4, "challenger": 0.1})
    look = cloud.http.get(f"/api/experiments/{experiment_id}", headers=viewer)
    assert look.status_code == 200, look.text
    watched = look.json()
    assert watched["recommendation"] == "continue" and watched["sequential"] is None  # below the minimum sample
    assert watched["arms"]["champion"]["n"] + watched["arms"]["challenger"]["n"] == 40
    listed = cloud.http.get("/api/experiments", params={"status": "running"}, headers=viewer).json()
    assert [e["experiment_id"] for e in listed] == [experiment_id]

    early = cloud.http.post(f"/api/experiments/{experiment_id}/conclude", json={}, headers=operator)
    assert early.status_code == 409 and "not enough data" in early.json()["detail"]
    assert cloud.http.post(f"/api/experiments/{experiment_id}/stop", json={}, headers=operator).status_code == 422
    stopped = cloud.http.post(f"/api/experiments/{experiment_id}/stop", json={"reason": "done"}, headers=operator)
    assert stopped.status_code == 200 and stopped.json()["experiment"]["status"] == "stopped"
    assert cloud.http.get("/api/experiments/exp-missing", headers=viewer).status_code == 404

    db = open_database(cloud.config.database_url)
    try:
        actions = [row["action"] for row in rows_of(db, "audit_log")]
    finally:
        db.close()
    # each change is audited by the service, each refusal (403, two 400s, 409, 422) per request
    assert [a for a in actions if a.startswith("experiments.")] == [
        "experiments.create",
        "experiments.start",
        "experiments.stop",
    ]
    assert actions.count("http.post") == 5
