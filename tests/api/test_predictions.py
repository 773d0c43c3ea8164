"""Prediction routes over real HTTP against a SQLite file seeded as ingest writes it."""

from __future__ import annotations

import httpx
import pytest

from cloud.api.roles import Role
from shared.messages import Arm, PredictionType
from tests.api import seed
from tests.api.conftest import auth

ROUTE = "/api/predictions/water-heaters"


@pytest.fixture
def viewer(tokens: dict[Role, str]) -> dict[str, str]:
    return auth(tokens[Role.VIEWER])


def test_latest_prediction_is_the_newest_served_one(db, http: httpx.Client, viewer) -> None:
    seed.device(db, "wh-1")
    seed.prediction(db, "wh-1", minutes=0, model_version="1")
    newest = seed.prediction(db, "wh-1", minutes=10, model_version="2")
    seed.prediction(db, "wh-1", minutes=20, arm=Arm.SHADOW, model_version="3")  # shadow outputs are not served
    seed.prediction(db, "wh-1", minutes=30, prediction_type=PredictionType.ANOMALY)

    response = http.get(f"{ROUTE}/wh-1/component_failure", headers=viewer)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prediction_id"] == newest.prediction_id
    assert body["model_name"] == "component_failure"
    assert body["model_version"] == "2"
    assert body["arm"] == "champion"
    assert body["made_at"] == "2026-01-31T06:10:00Z"
    assert body["outputs"] == {"heating_element": 0.8, "thermostat": 0.05}
    assert body["latency_ms"] == 1.5
    assert body["gateway_id"] == "gw-001"


def test_arm_filter_selects_shadow_predictions(db, http: httpx.Client, viewer) -> None:
    seed.device(db, "wh-1")
    seed.prediction(db, "wh-1", minutes=10)
    shadow = seed.prediction(db, "wh-1", minutes=5, arm=Arm.SHADOW, model_version="3")

    body = http.get(f"{ROUTE}/wh-1/component_failure", params={"arm": "shadow"}, headers=viewer).json()

    assert (body["prediction_id"], body["arm"], body["model_version"]) == (shadow.prediction_id, "shadow", "3")


def test_history_lists_newest_first_up_to_limit(db, http: httpx.Client, viewer) -> None:
    seed.device(db, "wh-1")
    made = [seed.prediction(db, "wh-1", minutes=m) for m in (0, 10, 20, 30)]

    response = http.get(f"{ROUTE}/wh-1/component_failure/history", params={"limit": 3}, headers=viewer)

    assert response.status_code == 200, response.text
    ids = [p["prediction_id"] for p in response.json()["predictions"]]
    assert ids == [made[3].prediction_id, made[2].prediction_id, made[1].prediction_id]


def test_unknown_device_is_404_naming_it(db, http: httpx.Client, viewer) -> None:
    response = http.get(f"{ROUTE}/wh-missing/component_failure", headers=viewer)

    assert response.status_code == 404
    assert response.json() == {"detail": "unknown device 'wh-missing': no gateway has reported it"}


def test_unknown_prediction_type_is_404_listing_the_valid_ones(db, http: httpx.Client, viewer) -> None:
    seed.device(db, "wh-1")

    response = http.get(f"{ROUTE}/wh-1/boiler_explosion", headers=viewer)

    assert response.status_code == 404
    detail = response.json()["detail"]
    assert detail.startswith("unknown prediction type 'boiler_explosion'")
    assert all(t.value in detail for t in PredictionType)


def test_known_device_without_prediction_of_that_type_is_a_distinct_404(db, http: httpx.Client, viewer) -> None:
    seed.device(db, "wh-1")
    seed.prediction(db, "wh-1", prediction_type=PredictionType.ANOMALY)

    response = http.get(f"{ROUTE}/wh-1/usage_pattern", headers=viewer)

    assert response.status_code == 404
    assert response.json() == {"detail": "device 'wh-1' has no usage_pattern prediction yet"}


def test_history_limit_out_of_range_is_422(db, http: httpx.Client, viewer) -> None:
    seed.device(db, "wh-1")

    response = http.get(f"{ROUTE}/wh-1/component_failure/history", params={"limit": 0}, headers=viewer)

    assert response.status_code == 422
