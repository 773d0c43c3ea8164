"""Bad requests get a 4xx that says what is wrong, never a 5xx: one test per class the hardening issue found."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud.api.roles import Role
from cloud.config import PASSPHRASE_ENV, CloudConfig
from cloud.storage import open_database
from tests.api import seed
from tests.api.conftest import ServedCloud, auth, served_cloud

TOO_BIG_FOR_SQLITE = 2**63 + 1


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedCloud]:
    config = CloudConfig(data_dir=Path(tmp_path_factory.mktemp("bad")) / "cloud", api_max_body_bytes=64 * 1024)
    db = open_database(config.database_url)
    try:
        seed.model_version(db, "component_failure", "1", "production", days=0)  # so monitoring reaches its checks
    finally:
        db.close()
    with served_cloud(config) as served:
        yield served


@pytest.fixture
def admin(cloud: ServedCloud) -> dict[str, str]:
    return auth(cloud.tokens[Role.ADMIN])


def _refused(response: httpx.Response, status: int, field: str) -> None:
    """A 422 names the field (FastAPI's shape); any other refusal says what it refused."""
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    if status == 422:
        assert any(field in [str(part) for part in error["loc"]] for error in detail), detail
    else:
        assert field in detail


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"/api/audit?since_id={TOO_BIG_FOR_SQLITE}", "since_id"),
        (f"/api/rollouts/{TOO_BIG_FOR_SQLITE}", "rollout_id"),
        (f"/api/training/runs/4f1c2a9b7d3e5f60?after_log_id={TOO_BIG_FOR_SQLITE}", "after_log_id"),
        ("/api/deployments?deadline_s=1e15", "deadline_s"),  # timedelta overflows past ~1e14 s
        ("/api/deployments?deadline_s=nan", "deadline_s"),
        ("/api/monitoring/metrics?start=0.5", "start"),  # pydantic would take it for seconds since 1970
        ("/api/audit?limit=0.5", "limit"),
    ],
)
def test_out_of_range_numbers_in_paths_and_queries_are_422(cloud: ServedCloud, admin, path: str, field: str) -> None:
    _refused(cloud.http.get(path, headers=admin), 422, field)


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/api/monitoring/report?time_period=2026-01-01..9999-12-31", 400, "ends too late"),
        ("/api/monitoring/performance/component_failure?window=99999999999w", 400, "longer than any period"),
        ("/api/monitoring/performance/component_failure?start=0001-01-01T00:00Z&end=9999-12-31T00:00Z", 422, "start"),
        ("/api/features/wh-0042?start=0001-01-01T00:00:00Z", 422, "start"),
    ],
)
def test_times_and_spans_at_the_ends_of_the_calendar_are_refused(
    cloud: ServedCloud, admin, path: str, status: int, field: str
) -> None:
    _refused(cloud.http.get(path, headers=admin), status, field)


def test_a_rollout_id_beyond_any_store_is_refused_by_every_rollout_action(cloud: ServedCloud, admin) -> None:
    response = cloud.http.post(f"/api/rollouts/{TOO_BIG_FOR_SQLITE}/halt", headers=admin, json={"reason": "test"})

    _refused(response, 422, "rollout_id")


def test_a_stage_deadline_that_overflows_a_time_span_is_422(cloud: ServedCloud, admin, monkeypatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "any")  # past the signing check, to where the deadline is used
    body = {"model_name": "component_failure", "version": "1", "reason": "test", "stage_deadline_s": 1e308}

    _refused(cloud.http.post("/api/rollouts", headers=admin, json=body), 422, "stage_deadline_s")


@pytest.mark.parametrize("path", ["/tuf/metadata/root.json%00.txt", "/tuf/targets/models/a%00b/c.onnx"])
def test_a_nul_byte_in_a_tuf_path_is_404(cloud: ServedCloud, path: str) -> None:
    response = cloud.http.get(path, headers=auth(cloud.tokens[Role.GATEWAY]))

    _refused(response, 404, "no such TUF file")


def test_a_body_over_the_cap_is_413_with_a_content_length(cloud: ServedCloud, admin) -> None:
    response = cloud.http.post("/api/rollouts", headers=admin, content=b" " * (20 * 2**20))

    _refused(response, 413, "larger than 65536 bytes")


def test_the_cap_is_configured_through_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("IOTSPHERE_API_MAX_BODY_BYTES", "4096")

    assert CloudConfig().api_max_body_bytes == 4096


def test_a_chunked_body_over_the_cap_is_413_without_one(cloud: ServedCloud, admin) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: httpx sends it chunked
        yield b"["
        for _ in range(100):
            yield b"1," * 1024

    response = cloud.http.post(
        "/api/training/runs", headers={**admin, "Content-Type": "application/json"}, content=chunks()
    )

    _refused(response, 413, "larger than 65536 bytes")


@pytest.mark.parametrize(
    "body",
    [
        b'{"cooldown_hours": Infinity}',
        b'{"cooldown_hours": NaN}',
        b'{"cooldown_hours": 1e400}',
        b"[" * 30_000 + b"]" * 30_000,
        b'\xff\xfe{"enabled": true}',
    ],
    ids=["infinity", "nan", "overflowing-number", "nested-30000-deep", "not-utf-8"],
)
def test_a_json_body_that_is_not_json_is_422_and_changes_nothing(cloud: ServedCloud, admin, body: bytes) -> None:
    path = "/api/retraining/policies/component_failure"
    before = cloud.http.get(path, headers=admin).json()

    response = cloud.http.patch(path, headers={**admin, "Content-Type": "application/json"}, content=body)

    _refused(response, 422, "body")
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert cloud.http.get(path, headers=admin).json() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cooldown_hours": 1e300}, "cooldown_hours"),  # a cooldown no timedelta can hold
        ({"window_days": 10**12}, "window_days"),
        ({"window_days": "7"}, "window_days"),  # a string where the policy compares numbers
        ({"enabled": 1}, "enabled"),
        ({"no_such_setting": True}, "no_such_setting"),
    ],
)
def test_a_policy_change_out_of_range_or_of_the_wrong_type_is_422(
    cloud: ServedCloud, admin, change: dict, field: str
) -> None:
    response = cloud.http.patch("/api/retraining/policies/component_failure", headers=admin, json=change)

    _refused(response, 422, field)


def test_a_single_valued_query_parameter_given_twice_is_422(cloud: ServedCloud, admin) -> None:
    response = cloud.http.get("/api/rollouts?model=component_failure&model=anomaly", headers=admin)

    _refused(response, 422, "model")
    assert cloud.http.get("/api/features/wh-0042?names=a&names=b", headers=admin).status_code == 404  # a list


def test_options_lists_every_method_of_the_path(cloud: ServedCloud) -> None:
    response = cloud.http.options("/api/rollouts")

    assert response.status_code == 204
    assert response.headers["allow"] == "GET, POST, OPTIONS"


def test_an_unsupported_method_is_405_listing_every_method_of_the_path(cloud: ServedCloud, admin) -> None:
    response = cloud.http.put("/api/retraining/policies/component_failure", headers=admin)

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PATCH, OPTIONS"


def test_the_body_cap_and_the_guards_answers_are_in_the_openapi_document(cloud: ServedCloud) -> None:
    operation = cloud.http.get("/openapi.json").json()["paths"]["/api/rollouts"]["post"]

    assert operation["responses"]["413"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert operation["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/HTTPValidationError"
    )
