"""Changes through the real app over HTTP are audited by their services, refusals and crashes by the app; admins
read the log."""

from __future__ import annotations

import hashlib
import json

import httpx
import sqlite_utils
from fastapi import Depends
from sqlalchemy import text

from cloud.api.app import create_app
from cloud.api.deps import require_role
from cloud.api.roles import Role
from cloud.config import CloudConfig
from shared.messages import Prediction
from tests.api.conftest import auth
from tests.api.server import ThreadedServer
from tests.rows import rows_of, tampering


def _key_id(token: str) -> str:
    return token.split("_")[1]


def _rating(http: httpx.Client, prediction: Prediction, token: str, body: bytes) -> httpx.Response:
    headers = {**auth(token), "Content-Type": "application/json"}
    return http.post(f"/api/predictions/{prediction.prediction_id}/feedback", content=body, headers=headers)


#: the fixture's keys, one per role: each creation is audited before a test begins
KEYS = len(Role)


def _requests(db: sqlite_utils.Database) -> list[dict]:
    """Entries after the fixture's key creations."""
    return [row for row in rows_of(db, "audit_log") if row["id"] > KEYS]


def test_a_change_through_the_api_is_recorded_once_by_its_service_with_the_key_as_actor(
    http: httpx.Client, tokens: dict[Role, str], prediction: Prediction, db: sqlite_utils.Database
) -> None:
    body = json.dumps({"rating": 4, "comments": "tech-17 private remark"}).encode()

    response = _rating(http, prediction, tokens[Role.TECHNICIAN], body)
    again = _rating(http, prediction, tokens[Role.TECHNICIAN], body)  # a retry stores nothing: nothing to record

    assert (response.status_code, again.status_code) == (201, 200)
    [entry] = _requests(db)
    assert (entry["actor"], entry["action"], entry["target"]) == (
        f"key:{_key_id(tokens[Role.TECHNICIAN])}",
        "feedback.rate",
        prediction.prediction_id,
    )
    request_id = response.headers["x-request-id"]  # the request's id, as its log lines carry it
    assert json.loads(entry["details_json"]) == {"id": response.json()["id"], "rating": 4, "request_id": request_id}
    assert "private remark" not in json.dumps(entry)


def test_a_refused_request_is_recorded_with_a_hash_of_its_body_and_an_anonymous_or_reading_one_is_not(
    http: httpx.Client, tokens: dict[Role, str], prediction: Prediction, db: sqlite_utils.Database
) -> None:
    body = b'{"rating": 1, "comments": "tech-17 private remark"}'

    refused = _rating(http, prediction, tokens[Role.VIEWER], body)
    anonymous = http.post(f"/api/predictions/{prediction.prediction_id}/feedback", content=body)
    read = http.get(f"/api/predictions/{prediction.prediction_id}/feedback", headers=auth(tokens[Role.VIEWER]))

    assert (refused.status_code, anonymous.status_code, read.status_code) == (403, 401, 200)
    [entry] = _requests(db)
    assert (entry["actor"], entry["action"]) == (f"key:{_key_id(tokens[Role.VIEWER])}", "http.post")
    assert json.loads(entry["details_json"]) == {
        "method": "POST",
        "path": f"/api/predictions/{prediction.prediction_id}/feedback",
        "status": 403,
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "role": "viewer",
        "request_id": refused.headers["x-request-id"],
    }


def test_admins_list_filter_and_verify_the_log(
    http: httpx.Client, tokens: dict[Role, str], prediction: Prediction, db: sqlite_utils.Database
) -> None:
    for role in (Role.TECHNICIAN, Role.VIEWER):
        _rating(http, prediction, tokens[role], b'{"rating": 3}')
    admin = auth(tokens[Role.ADMIN])

    everything = http.get("/api/audit", params={"since_id": KEYS}, headers=admin)
    technician = http.get("/api/audit", params={"actor": f"key:{_key_id(tokens[Role.TECHNICIAN])}"}, headers=admin)
    verified = http.get("/api/audit/verify", headers=admin)
    operator = http.get("/api/audit", headers=auth(tokens[Role.OPERATOR]))

    assert [(e["action"], e["details"].get("status")) for e in everything.json()] == [
        ("feedback.rate", None),
        ("http.post", 403),
    ]
    assert [e["id"] for e in technician.json()] == [KEYS + 1]
    assert verified.json() == {
        "ok": True,
        "checked": KEYS + 2,
        "head_id": KEYS + 2,
        "head_hash": everything.json()[-1]["hash"],
        "broken_id": None,
        "reason": None,
        "checkpoints": 0,
        "problems": [],
    }
    assert operator.status_code == 403
    with tampering(db) as connection:
        forged = "UPDATE audit_log SET details_json = replace(details_json, '403', '201') WHERE id = :id"
        connection.execute(text(forged), {"id": KEYS + 2})
    broken = http.get("/api/audit/verify", headers=admin).json()
    assert (broken["ok"], broken["broken_id"], broken["head_id"]) == (False, KEYS + 2, KEYS + 1)


def test_a_route_that_crashes_is_recorded_as_a_500(
    config: CloudConfig, tokens: dict[Role, str], db: sqlite_utils.Database
) -> None:
    app = create_app(config)

    def crash() -> None:
        raise RuntimeError("half-way through a change")

    app.add_api_route("/api/crash", crash, methods=["DELETE"], dependencies=[Depends(require_role(Role.OPERATOR))])
    with ThreadedServer(app) as server:
        response = httpx.delete(f"{server.base_url}/api/crash", headers=auth(tokens[Role.OPERATOR]))

    assert response.status_code == 500
    [entry] = _requests(db)
    assert (entry["actor"], entry["action"]) == (f"key:{_key_id(tokens[Role.OPERATOR])}", "http.delete")
    assert json.loads(entry["details_json"])["status"] == 500
