"""Feedback routes over real HTTP on a real SQLite file: roles, 404s, validation, idempotency, redaction."""

from __future__ import annotations

import httpx
import pytest

from cloud.api.roles import Role
from shared.messages import Prediction, PredictionType
from tests.api import seed
from tests.api.conftest import auth
from tests.rows import count

OUTCOME = {"component": "heating_element", "result": "failed", "technician": "tech-17", "notes": "open circuit"}


def _heater_route(p: Prediction, prediction_type: str = "component_failure", device: str = "wh-1") -> str:
    return f"/api/predictions/water-heaters/{device}/{prediction_type}/{p.prediction_id}"


@pytest.mark.parametrize("what, body", [("outcome", OUTCOME), ("feedback", {"rating": 5})])
def test_writing_needs_the_technician_role(http: httpx.Client, tokens, prediction: Prediction, what, body) -> None:
    route = f"/api/predictions/{prediction.prediction_id}/{what}"

    refused = http.post(route, json=body, headers=auth(tokens[Role.VIEWER]))
    anonymous = http.post(route, json=body)
    gateway = http.post(route, json=body, headers=auth(tokens[Role.GATEWAY]))
    accepted = http.post(route, json=body, headers=auth(tokens[Role.TECHNICIAN]))

    assert (refused.status_code, anonymous.status_code, gateway.status_code) == (403, 401, 403)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["created"] is True


def test_the_same_outcome_posted_twice_is_stored_once(http: httpx.Client, tokens, db, prediction: Prediction) -> None:
    technician = auth(tokens[Role.TECHNICIAN])
    route = f"/api/predictions/{prediction.prediction_id}/outcome"

    first = http.post(route, json=OUTCOME, headers=technician)
    again = http.post(route, json=OUTCOME, headers=technician)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {**first.json(), "created": False}
    assert count(db, "outcomes") == 1


def test_unknown_predictions_are_404(http: httpx.Client, tokens, prediction: Prediction) -> None:
    technician = auth(tokens[Role.TECHNICIAN])

    responses = [
        http.post("/api/predictions/nope-0000/outcome", json=OUTCOME, headers=technician),
        http.post("/api/predictions/nope-0000/feedback", json={"rating": 3}, headers=technician),
        http.get("/api/predictions/nope-0000/outcomes", headers=technician),
        http.get("/api/predictions/nope-0000/feedback", headers=technician),
    ]

    assert [r.status_code for r in responses] == [404] * 4
    assert responses[0].json()["detail"] == "unknown prediction 'nope-0000': no gateway has reported it"


@pytest.mark.parametrize("rating", [0, 6])
def test_a_rating_outside_one_to_five_is_422(http: httpx.Client, tokens, db, prediction: Prediction, rating) -> None:
    response = http.post(
        f"/api/predictions/{prediction.prediction_id}/feedback",
        json={"rating": rating, "comments": "x"},
        headers=auth(tokens[Role.TECHNICIAN]),
    )

    assert response.status_code == 422, response.text
    assert count(db, "feedback") == 0


def test_notes_and_comments_are_shown_to_operators_only(http: httpx.Client, tokens, prediction: Prediction) -> None:
    technician = auth(tokens[Role.TECHNICIAN])
    base = f"/api/predictions/{prediction.prediction_id}"
    http.post(f"{base}/outcome", json=OUTCOME, headers=technician).raise_for_status()
    http.post(f"{base}/feedback", json={"rating": 2, "comments": "too late"}, headers=technician).raise_for_status()

    seen = {
        role: (
            http.get(f"{base}/outcomes", headers=auth(tokens[role])).json()["outcomes"][0],
            http.get(f"{base}/feedback", headers=auth(tokens[role])).json()["feedback"][0],
        )
        for role in (Role.VIEWER, Role.TECHNICIAN, Role.OPERATOR, Role.ADMIN)
    }

    for role in (Role.VIEWER, Role.TECHNICIAN):
        outcome, feedback = seen[role]
        assert (outcome["notes"], outcome["notes_redacted"]) == (None, True)
        assert (feedback["comments"], feedback["comments_redacted"]) == (None, True)
        assert (outcome["result"], feedback["rating"]) == ("failed", 2)
    for role in (Role.OPERATOR, Role.ADMIN):
        outcome, feedback = seen[role]
        assert (outcome["notes"], feedback["comments"]) == ("open circuit", "too late")


def test_water_heater_routes_check_the_device_and_type(http: httpx.Client, tokens, db, prediction: Prediction) -> None:
    technician = auth(tokens[Role.TECHNICIAN])
    seed.device(db, "wh-2")

    outcome = http.post(_heater_route(prediction) + "/outcome", json=OUTCOME, headers=technician)
    feedback = http.post(_heater_route(prediction) + "/feedback", json={"rating": 4}, headers=technician)
    wrong_device = http.post(
        _heater_route(prediction, device="wh-2") + "/feedback", json={"rating": 4}, headers=technician
    )
    wrong_type = http.get(_heater_route(prediction, PredictionType.ANOMALY.value) + "/outcomes", headers=technician)
    listed = http.get(_heater_route(prediction) + "/outcomes", headers=auth(tokens[Role.VIEWER]))

    assert (outcome.status_code, feedback.status_code) == (201, 201)
    assert (wrong_device.status_code, wrong_type.status_code) == (404, 404)
    assert "is not a component_failure prediction of device 'wh-2'" in wrong_device.json()["detail"]
    assert [o["outcome_id"] for o in listed.json()["outcomes"]] == [outcome.json()["id"]]
    assert count(db, "feedback") == 1


def test_the_read_routes_of_predictions_still_answer(http: httpx.Client, tokens, prediction: Prediction) -> None:
    response = http.get("/api/predictions/water-heaters/wh-1/component_failure", headers=auth(tokens[Role.VIEWER]))

    assert response.status_code == 200, response.text
    assert response.json()["prediction_id"] == prediction.prediction_id


def test_every_feedback_route_documents_its_role(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    ours = {p: ops for p, ops in paths.items() if p.endswith(("/outcome", "/outcomes", "/feedback"))}

    assert len(ours) == 6
    roles = {(p, m): op["x-required-role"] for p, ops in ours.items() for m, op in ops.items()}
    assert {r for (p, m), r in roles.items() if m == "post"} == {"technician"}
    assert {r for (p, m), r in roles.items() if m == "get"} == {"viewer"}
