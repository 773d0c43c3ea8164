"""The feature routes through real HTTP on a real SQLite file: answers, errors and role checks."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.feature_store import FeatureStore
from cloud.storage import open_database
from shared.features import FEATURE_NAMES
from tests.api.conftest import ServedCloud, auth, served_cloud
from tests.feature_store.conftest import AS_OF, DAY, T0, add_outcome, vector

DATASET_REQUEST = {
    "start_date": T0.isoformat(),
    "end_date": (T0 + 6 * DAY).isoformat(),
    "horizon_days": 3,
    "as_of": AS_OF.isoformat(),
}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedCloud]:
    config = CloudConfig(data_dir=tmp_path_factory.mktemp("cloud"))
    db = open_database(config.database_path)
    store = FeatureStore(db)
    for day in range(6):
        row = vector(float(day))
        row[FEATURE_NAMES[1]] = None if day == 5 else row[FEATURE_NAMES[1]]
        store.store_device_features("wh-1", row, T0 + day * DAY)
    add_outcome(db, "wh-1", T0 + 4 * DAY, "heating_element", "failed")
    db.conn.close()
    with served_cloud(config) as served:
        yield served


def _get(cloud: ServedCloud, path: str, role: Role = Role.VIEWER, **params) -> httpx.Response:
    return cloud.http.get(path, params=params, headers=auth(cloud.tokens[role]))


def test_device_features_by_name_and_range(cloud: ServedCloud) -> None:
    response = _get(
        cloud,
        "/api/features/wh-1",
        names=[FEATURE_NAMES[1], FEATURE_NAMES[0]],
        start=(T0 + 3 * DAY).isoformat(),
        end=(T0 + 9 * DAY).isoformat(),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["feature_names"] == [FEATURE_NAMES[1], FEATURE_NAMES[0]]
    assert [row["values"] for row in body["rows"]] == [[4.0, 3.0], [5.0, 4.0], [None, 5.0]]
    assert body["rows"][0]["window_end"].startswith("2026-01-04T00:00:00")
    assert len(_get(cloud, "/api/features/wh-1", limit=2).json()["rows"]) == 2


def test_latest_values_with_their_age(cloud: ServedCloud) -> None:
    response = _get(cloud, "/api/features/wh-1/latest")

    assert response.status_code == 200, response.text
    features = response.json()["features"]
    assert features[FEATURE_NAMES[0]]["value"] == 5.0 and features[FEATURE_NAMES[0]]["window_end"].startswith(
        "2026-01-06"
    )
    assert features[FEATURE_NAMES[1]]["value"] == 5.0 and features[FEATURE_NAMES[1]]["window_end"].startswith(
        "2026-01-05"
    )
    assert features[FEATURE_NAMES[1]]["age_seconds"] - features[FEATURE_NAMES[0]]["age_seconds"] == DAY.total_seconds()


def test_unknown_device_and_feature_are_clear_errors(cloud: ServedCloud) -> None:
    assert _get(cloud, "/api/features/wh-9").json() == {
        "detail": "unknown device 'wh-9': no feature row has been stored for it"
    }
    assert _get(cloud, "/api/features/wh-9/latest").status_code == 404
    bogus = _get(cloud, "/api/features/wh-1", names=["bogus"])
    assert bogus.status_code == 400 and "bogus" in bogus.json()["detail"]  # Invalid: a name no feature set has


def test_an_operator_builds_a_dataset_and_a_viewer_reads_its_record(cloud: ServedCloud) -> None:
    built = cloud.http.post("/api/datasets", json=DATASET_REQUEST, headers=auth(cloud.tokens[Role.OPERATOR]))

    assert built.status_code == 201, built.text
    record = built.json()
    assert record["row_count"] == 6 and len(record["content_hash"]) == 64
    assert record["query"]["horizon_seconds"] == 3 * 86400
    again = cloud.http.post("/api/datasets", json=DATASET_REQUEST, headers=auth(cloud.tokens[Role.ADMIN])).json()
    assert again["content_hash"] == record["content_hash"] and again["dataset_id"] != record["dataset_id"]
    read = _get(cloud, f"/api/datasets/{record['dataset_id']}")
    assert read.status_code == 200 and read.json() == record
    assert _get(cloud, "/api/datasets/nope").status_code == 404


def test_a_dataset_can_be_labelled_for_another_prediction_type(cloud: ServedCloud) -> None:
    operator = auth(cloud.tokens[Role.OPERATOR])
    request = {**DATASET_REQUEST, "prediction_type": "anomaly", "as_of": (T0 + 4 * DAY).isoformat()}
    built = cloud.http.post("/api/datasets", json=request, headers=operator)

    assert built.status_code == 201, built.text
    record = built.json()  # every row, though the failure is not known yet and the latest horizons have not passed
    assert record["row_count"] == 6 and record["query"]["prediction_type"] == "anomaly"
    wrong = cloud.http.post("/api/datasets", json={**DATASET_REQUEST, "prediction_type": "weather"}, headers=operator)
    assert wrong.status_code == 422


def test_a_bad_dataset_request_is_refused_with_the_reason(cloud: ServedCloud) -> None:
    operator = auth(cloud.tokens[Role.OPERATOR])

    unknown = cloud.http.post("/api/datasets", json={**DATASET_REQUEST, "feature_names": ["bogus"]}, headers=operator)
    naive = cloud.http.post(
        "/api/datasets", json={**DATASET_REQUEST, "start_date": "2026-01-01T00:00:00"}, headers=operator
    )

    assert unknown.status_code == 400 and "bogus" in unknown.json()["detail"]  # Invalid, in the documented 400 shape
    assert naive.status_code == 422


@pytest.mark.parametrize("role", [Role.VIEWER, Role.TECHNICIAN, Role.GATEWAY])
def test_building_a_dataset_needs_the_operator_role(cloud: ServedCloud, role: Role) -> None:
    response = cloud.http.post("/api/datasets", json=DATASET_REQUEST, headers=auth(cloud.tokens[role]))

    assert response.status_code == 403
    assert "needs the operator role" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/api/features/wh-1", "/api/features/wh-1/latest", "/api/datasets/nope"])
def test_reads_need_a_person_key(cloud: ServedCloud, path: str) -> None:
    assert cloud.http.get(path).status_code == 401
    assert _get(cloud, path, role=Role.GATEWAY).status_code == 403


EXPECTED = {
    ("/api/features/{device_id}", "get", "200"): "viewer",
    ("/api/features/{device_id}/latest", "get", "200"): "viewer",
    ("/api/datasets", "post", "201"): "operator",
    ("/api/datasets/{dataset_id}", "get", "200"): "viewer",
}


def test_openapi_documents_each_route_with_its_role_and_examples(cloud: ServedCloud) -> None:
    schema = cloud.http.get("/openapi.json").json()
    components = schema["components"]["schemas"]

    for (path, method, success), role in EXPECTED.items():
        operation = schema["paths"][path][method]
        assert operation["x-required-role"] == role and operation["tags"] == ["features"], path
        assert operation["description"].startswith(f"**Role:** `{role}`"), path
        assert {"401", "403"} <= set(operation["responses"]), path
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert parameter["schema"].get("examples") or parameter.get("examples"), (path, parameter["name"])
        ref = operation["responses"][success]["content"]["application/json"]["schema"]["$ref"]
        assert components[ref.rsplit("/", 1)[1]].get("examples"), (path, ref)
    request = schema["paths"]["/api/datasets"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert components[request.rsplit("/", 1)[1]].get("examples")
