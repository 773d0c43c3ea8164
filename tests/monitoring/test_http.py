"""``/api/monitoring`` over real HTTP: operators track points, viewers read series, performance and reports."""

from __future__ import annotations

import re

import httpx

from cloud.api.roles import Role
from tests.api.conftest import auth
from tests.monitoring.conftest import Fleet
from tests.monitoring.fleet import T0

_POINT = {
    "prediction_type": "component_failure",
    "metrics": {"alert_rate": 0.042, "confirmed": 0.6},
    "timestamp": "2026-03-01T06:00:00Z",
    "model_version": "1",
    "arm": "champion",
}


def test_operators_track_points_and_viewers_read_the_series(http: httpx.Client, tokens: dict[Role, str]):
    refused = http.post("/api/monitoring/metrics", json=_POINT, headers=auth(tokens[Role.VIEWER]))
    assert refused.status_code == 403

    stored = http.post("/api/monitoring/metrics", json=_POINT, headers=auth(tokens[Role.OPERATOR]))
    assert (stored.status_code, stored.json()) == (201, {"stored": 2})
    bad = http.post(
        "/api/monitoring/metrics",
        json={**_POINT, "metrics": {"alert_rate": "lots"}},
        headers=auth(tokens[Role.OPERATOR]),
    )
    assert bad.status_code == 422

    read = http.get(
        "/api/monitoring/metrics", params={"metric": "alert_rate", "arm": "champion"}, headers=auth(tokens[Role.VIEWER])
    )
    assert read.status_code == 200, read.text
    assert [(p["metric"], p["value"], p["model_version"], p["source"]) for p in read.json()] == [
        ("alert_rate", 0.042, "1", "tracked")
    ]
    assert http.get("/api/monitoring/metrics").status_code == 401
    naive = http.get(
        "/api/monitoring/metrics", params={"start": "2026-03-01T00:00:00"}, headers=auth(tokens[Role.VIEWER])
    )
    assert naive.status_code == 400 and "time zone" in naive.json()["detail"]


def test_performance_is_computed_from_the_stored_outcomes(
    failure_fleet: Fleet, http: httpx.Client, tokens: dict[Role, str]
):
    response = http.get(
        "/api/monitoring/performance/component_failure",
        params={
            "start": "2026-03-01T00:00:00Z",
            "end": "2026-03-03T00:00:00Z",
            "window": "all",
            "group_by": ["model_version", "arm"],
        },
        headers=auth(tokens[Role.VIEWER]),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["group_by"] == ["model_version", "arm"]
    assert sorted((c["model_version"], c["arm"], c["predictions"]) for c in body["cells"]) == [
        ("1", "challenger", 160),
        ("1", "champion", 160),
        ("2", "challenger", 160),
        ("2", "champion", 160),
    ]
    assert all(0 <= c["classification"]["heating_element"]["roc_auc"] <= 1 for c in body["cells"])


def test_performance_errors_are_clear(failure_fleet: Fleet, http: httpx.Client, tokens: dict[Role, str]):
    viewer = auth(tokens[Role.VIEWER])

    unknown = http.get("/api/monitoring/performance/nope", headers=viewer)
    assert unknown.status_code == 404 and "unknown model 'nope'" in unknown.json()["detail"]
    window = http.get("/api/monitoring/performance/component_failure", params={"window": "3x"}, headers=viewer)
    assert window.status_code == 400 and "window must look like" in window.json()["detail"]
    half = http.get(
        "/api/monitoring/performance/component_failure", params={"start": "2026-03-01T00:00:00Z"}, headers=viewer
    )
    assert half.status_code == 400 and "start and end together" in half.json()["detail"]
    group = http.get("/api/monitoring/performance/component_failure", params={"group_by": "site"}, headers=viewer)
    assert group.status_code == 400 and "group_by takes" in group.json()["detail"]


def test_the_report_as_json_and_as_a_self_contained_page(
    failure_fleet: Fleet, http: httpx.Client, tokens: dict[Role, str]
):
    viewer = auth(tokens[Role.VIEWER])
    params = {"time_period": f"{T0:%Y-%m-%d}..{T0:%Y-%m-%d}", "model_name": "component_failure"}

    as_json = http.get("/api/monitoring/report", params=params, headers=viewer)
    assert as_json.status_code == 200, as_json.text
    [model] = as_json.json()["models"]
    assert sum(c["predictions"] for c in model["summary"]) == 320  # the first day only

    page = http.get("/api/monitoring/report", params={**params, "format": "html"}, headers=viewer)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'class="time-series"' in page.text and not re.search(r"https?://", re.sub(r"/\*!.*?\*/", "", page.text))

    bad = http.get("/api/monitoring/report", params={"time_period": "someday"}, headers=viewer)
    assert bad.status_code == 400 and "time_period must be one of" in bad.json()["detail"]
