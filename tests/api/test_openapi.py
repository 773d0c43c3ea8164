"""The OpenAPI document: every route, its role, its examples; and the rule that every route declares a role."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, Depends

from cloud.api.auth import public, route_roles
from cloud.api.deps import require_role
from cloud.api.roles import Role

#: (method, path) → the role the route requires; written out, not derived from the code under test
EXPECTED_ROLES = {
    ("get", "/api/health"): None,
    ("get", "/healthz"): None,
    ("get", "/readyz"): None,
    ("get", "/metrics"): None,  # a key unless on loopback or IOTSPHERE_METRICS_PUBLIC=1 (cloud.observability.http)
    ("get", "/api/predictions/water-heaters/{device_id}/{prediction_type}"): "viewer",
    ("get", "/api/predictions/water-heaters/{device_id}/{prediction_type}/history"): "viewer",
    ("post", "/api/predictions/{prediction_id}/outcome"): "technician",
    ("post", "/api/predictions/{prediction_id}/feedback"): "technician",
    ("get", "/api/predictions/{prediction_id}/outcomes"): "viewer",
    ("get", "/api/predictions/{prediction_id}/feedback"): "viewer",
    ("post", "/api/predictions/water-heaters/{device_id}/{prediction_type}/{prediction_id}/outcome"): "technician",
    ("post", "/api/predictions/water-heaters/{device_id}/{prediction_type}/{prediction_id}/feedback"): "technician",
    ("get", "/api/predictions/water-heaters/{device_id}/{prediction_type}/{prediction_id}/outcomes"): "viewer",
    ("get", "/api/predictions/water-heaters/{device_id}/{prediction_type}/{prediction_id}/feedback"): "viewer",
    ("get", "/api/models"): "viewer",
    ("get", "/api/models/{model_name}"): "viewer",
    ("get", "/api/models/{model_name}/{version}"): "viewer",
    ("post", "/api/models/{model_name}/{version}/promote"): "operator",
    ("post", "/api/models/{model_name}/rollback"): "operator",
    ("get", "/api/models/{model_name}/history"): "viewer",
    ("get", "/api/models/{model_name}/active"): "viewer",
    ("get", "/api/gateways"): "viewer",
    ("get", "/api/gateways/{gateway_id}"): "viewer",
    ("get", "/api/deployments"): "viewer",
    ("get", "/api/deployments/{gateway_id}"): "viewer",
    ("get", "/api/director/failures"): "viewer",
    ("get", "/api/dead-letters"): "operator",
    ("get", "/api/security-events"): "viewer",
    ("get", "/api/security-events/counts"): "viewer",
    ("get", "/api/alerts"): "viewer",
    ("get", "/api/alerts/counts"): "viewer",
    ("post", "/api/alerts/scan"): "operator",
    ("post", "/api/alerts/{alert_id}/acknowledge"): "operator",
    ("post", "/api/alerts/{alert_id}/resolve"): "operator",
    ("get", "/api/admin/keys"): "admin",
    ("get", "/api/audit"): "admin",
    ("get", "/api/audit/verify"): "admin",
    ("post", "/api/audit/checkpoints"): "admin",
    ("get", "/api/audit/checkpoints"): "admin",
    ("get", "/api/features/{device_id}"): "viewer",
    ("get", "/api/features/{device_id}/latest"): "viewer",
    ("post", "/api/datasets"): "operator",
    ("get", "/api/datasets/{dataset_id}"): "viewer",
    ("post", "/api/training/runs"): "operator",
    ("get", "/api/training/runs"): "viewer",
    ("get", "/api/training/runs/{run_id}"): "viewer",
    ("post", "/api/training/runs/{run_id}/cancel"): "operator",
    ("post", "/api/training/schedules"): "operator",
    ("get", "/api/training/schedules"): "viewer",
    ("delete", "/api/training/schedules/{schedule_id}"): "operator",
    ("post", "/api/training/evaluations/{model_name}/{model_version}"): "operator",
    ("get", "/api/training/evaluations/{model_name}"): "viewer",
    ("post", "/api/rollouts"): "operator",
    ("get", "/api/rollouts"): "viewer",
    ("get", "/api/rollouts/{rollout_id}"): "viewer",
    ("post", "/api/rollouts/{rollout_id}/advance"): "operator",
    ("post", "/api/rollouts/{rollout_id}/halt"): "operator",
    ("post", "/api/rollouts/{rollout_id}/resume"): "operator",
    ("post", "/api/rollouts/{rollout_id}/rollback"): "operator",
    ("post", "/api/rollouts/{rollout_id}/cancel"): "operator",
    ("get", "/api/monitoring/drift/{model_name}"): "viewer",
    ("post", "/api/monitoring/drift/{model_name}/check"): "operator",
    ("get", "/api/monitoring/drift/{model_name}/history"): "viewer",
    ("post", "/api/experiments"): "operator",
    ("get", "/api/experiments"): "viewer",
    ("get", "/api/experiments/{experiment_id}"): "viewer",
    ("post", "/api/experiments/{experiment_id}/start"): "operator",
    ("post", "/api/experiments/{experiment_id}/stop"): "operator",
    ("post", "/api/experiments/{experiment_id}/conclude"): "operator",
    ("post", "/api/monitoring/metrics"): "operator",
    ("get", "/api/monitoring/metrics"): "viewer",
    ("get", "/api/monitoring/performance/{model_name}"): "viewer",
    ("get", "/api/monitoring/report"): "viewer",
    ("get", "/api/retraining/policies/{model_name}"): "viewer",
    ("patch", "/api/retraining/policies/{model_name}"): "operator",
    ("post", "/api/retraining/{model_name}/check"): "operator",
    ("get", "/api/retraining/decisions"): "viewer",
    ("get", "/tuf/metadata/{filename}"): "gateway",
    ("get", "/tuf/targets/{path}"): "gateway",
}


def _operations(schema: dict) -> dict[tuple[str, str], dict]:
    return {(method, path): operation for path, ops in schema["paths"].items() for method, operation in ops.items()}


@pytest.fixture
def schema(http: httpx.Client) -> dict:
    response = http.get("/openapi.json")  # public, like /docs
    assert response.status_code == 200
    return response.json()


def test_every_route_is_listed_with_its_role_in_the_description(schema: dict) -> None:
    operations = _operations(schema)

    assert set(operations) == set(EXPECTED_ROLES)
    for (method, path), operation in operations.items():
        role = EXPECTED_ROLES[(method, path)]
        assert operation["x-required-role"] == role, path
        expected = "**Role:** none (public" if role is None else f"**Role:** `{role}`"
        assert operation["description"].startswith(expected), path
        assert operation["tags"], path
        if role is not None:
            assert {"401", "403"} <= set(operation["responses"]), path
            assert operation["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}], path


def test_keys_allowed_on_a_route_are_spelled_out(schema: dict) -> None:
    description = schema["paths"]["/tuf/targets/{path}"]["get"]["description"]

    assert "keys allowed: operator, admin, gateway" in description


def test_responses_and_path_parameters_carry_examples(schema: dict) -> None:
    components = schema["components"]["schemas"]
    for (_method, path), operation in _operations(schema).items():
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert parameter["schema"].get("examples") or parameter.get("examples"), (path, parameter["name"])
        if path.startswith("/tuf/") or path == "/metrics":
            continue  # files and the Prometheus text format, not JSON documents
        success = next(code for code in ("200", "201", "202") if code in operation["responses"])
        response_schema = operation["responses"][success]["content"]["application/json"]["schema"]
        ref = response_schema.get("$ref") or response_schema.get("items", {}).get("$ref")
        assert ref, path
        assert components[ref.rsplit("/", 1)[1]].get("examples"), (path, ref)


def test_both_ways_of_sending_a_key_are_documented(schema: dict) -> None:
    schemes = schema["components"]["securitySchemes"]

    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert (schemes["APIKeyHeader"]["in"], schemes["APIKeyHeader"]["name"]) == ("header", "X-API-Key")


def test_a_route_without_a_declared_role_is_refused() -> None:
    router = APIRouter()

    @router.get("/forgotten")
    def forgotten() -> None: ...

    with pytest.raises(RuntimeError, match="route /forgotten must declare exactly one role"):
        route_roles(router)


def test_a_route_declaring_two_roles_is_refused() -> None:
    router = APIRouter(dependencies=[Depends(public)])

    @router.get("/confused", dependencies=[Depends(require_role(Role.ADMIN))])
    def confused() -> None: ...

    with pytest.raises(RuntimeError, match="route /confused must declare exactly one role"):
        route_roles(router)
