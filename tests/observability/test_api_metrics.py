"""The API's /metrics, /healthz and /readyz over real HTTP, after real traffic through Mosquitto and ingest."""

from __future__ import annotations

import re

import pytest

from cloud.api.roles import Role
from cloud.audit import AuditLog
from cloud.ingest import IngestWorker
from shared.topics import Up, up_topic
from tests.api.conftest import auth
from tests.ingest.helpers import Publisher, count, predictions, status, unique, wait_for
from tests.observability.conftest import Cloud
from tests.observability.scrape import has, value

PREDICTION_ROUTE = "/api/predictions/water-heaters/{device_id}/{prediction_type}"


def _three_predictions(gateway: str, version: str):
    one = predictions(gateway).predictions[0]
    batch = [one.model_copy(update={"prediction_id": unique("pred"), "model_version": version}) for _ in range(3)]
    return predictions(gateway).model_copy(update={"predictions": batch})


@pytest.mark.mqtt
def test_a_scrape_after_known_traffic_counts_it(cloud: Cloud, worker: IngestWorker) -> None:
    before = cloud.scrape()
    assert has(before, "iotsphere_ingest_dead_letters_total", reason="oversized")  # every reason kind from the start
    assert has(before, "iotsphere_ingest_messages_total", channel="events")
    publisher = Publisher(cloud.config.topic_prefix)
    try:
        publisher.send(_three_predictions("gw-obs", "41"), Up.PREDICTIONS)
        publisher.send(status("gw-obs"), Up.STATUS)
        publisher.raw(up_topic("gw-obs", Up.PREDICTIONS, cloud.config.topic_prefix), b"{not json")
    finally:
        publisher.close()
    wait_for(lambda: count(cloud.db, "predictions") == 3 and count(cloud.db, "dead_letters") == 1, what="stored")
    wait_for(
        lambda: (
            value(cloud.scrape(), "iotsphere_ingest_dead_letters_total", reason="malformed")
            > value(before, "iotsphere_ingest_dead_letters_total", reason="malformed")
        ),
        what="counted",
    )
    after = cloud.scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("iotsphere_ingest_messages_total", channel="predictions") == 1
    assert delta("iotsphere_ingest_messages_total", channel="status") == 1
    assert delta("iotsphere_ingest_dead_letters_total", reason="malformed") == 1
    assert delta("iotsphere_predictions_total", model="component_failure", version="41") == 3
    latency = {"model": "component_failure", "version": "41"}
    assert delta("iotsphere_edge_inference_latency_seconds_count", **latency) == 3
    assert delta("iotsphere_edge_inference_latency_seconds_sum", **latency) == pytest.approx(3 * 0.0015)
    assert delta("iotsphere_ingest_batch_store_seconds_count") >= 1
    assert value(after, "iotsphere_broker_connected", client=worker.client_id) == 1
    assert value(after, "iotsphere_health_check_ok", check=f"heartbeat:ingest-{worker.client_id}") == 1
    assert value(after, "iotsphere_gateways", state="online") == 1
    assert value(after, "iotsphere_gateways", state="offline") == 0
    assert value(after, "iotsphere_training_runs", state="failed") == 0  # every state is there, zeros included
    assert value(after, "iotsphere_scrape_section_ok", section="deployments") == 1
    labels = {labels for name, labels in after if name.startswith("iotsphere_")}
    assert not any(("gateway_id", "gw-obs") in pairs or ("device_id", "h1") in pairs for pairs in labels)


@pytest.mark.mqtt
def test_http_requests_are_counted_by_route_template_and_status(cloud: Cloud, worker: IngestWorker) -> None:
    publisher = Publisher(cloud.config.topic_prefix)
    try:
        publisher.send(_three_predictions("gw-http", "42"), Up.PREDICTIONS)
    finally:
        publisher.close()
    wait_for(lambda: count(cloud.db, "predictions") == 3, what="stored")
    before = cloud.scrape()

    assert (
        cloud.http.get(
            "/api/predictions/water-heaters/h1/component_failure", headers=auth(cloud.tokens[Role.VIEWER])
        ).status_code
        == 200
    )
    assert cloud.http.get("/api/predictions/water-heaters/h2/component_failure").status_code == 401
    assert cloud.http.get("/no/such/path").status_code == 404
    after = cloud.scrape()

    ok = {"route": PREDICTION_ROUTE, "method": "GET", "status": "200"}
    refused = {**ok, "status": "401"}
    assert (
        value(after, "iotsphere_http_requests_total", **ok) - value(before, "iotsphere_http_requests_total", **ok) == 1
    )
    assert (
        value(after, "iotsphere_http_requests_total", **refused)
        - value(before, "iotsphere_http_requests_total", **refused)
        == 1
    )
    unmatched = {"route": "<unmatched>", "method": "GET", "status": "404"}
    assert value(after, "iotsphere_http_requests_total", **unmatched) >= 1
    timed = {"route": PREDICTION_ROUTE, "method": "GET"}
    count_delta = value(after, "iotsphere_http_request_duration_seconds_count", **timed) - value(
        before, "iotsphere_http_request_duration_seconds_count", **timed
    )
    assert count_delta == 2
    assert not any(("route", "/no/such/path") in labels for _, labels in after)


@pytest.mark.mqtt
def test_readiness_lists_the_workers_checks_and_liveness_their_loops(cloud: Cloud, worker: IngestWorker) -> None:
    ready = cloud.http.get("/readyz")
    live = cloud.http.get("/healthz")

    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    names = {check["name"]: check["ok"] for check in ready.json()["checks"]}
    assert names["database"] and names["migrations"]
    assert names[f"broker:{worker.client_id}"] is True
    assert names[f"heartbeat:ingest-{worker.client_id}"] is True
    assert live.status_code == 200
    assert {check["name"] for check in live.json()["checks"]} == {f"heartbeat:ingest-{worker.client_id}"}

    worker.stop()
    gone = {check["name"] for check in cloud.http.get("/readyz").json()["checks"]}
    assert f"broker:{worker.client_id}" not in gone
    assert not has(cloud.scrape(), "iotsphere_broker_connected", client=worker.client_id)


def test_readiness_fails_when_the_database_is_gone(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.config.database_path.unlink()

    ready = cloud.http.get("/readyz")

    assert ready.status_code == 503 and ready.json()["status"] == "failing"
    failing = {check["name"] for check in ready.json()["checks"] if not check["ok"]}
    assert failing == {"database", "migrations"}
    assert value(cloud.scrape(), "iotsphere_scrape_section_ok", section="database") == 0
    monkeypatch.setenv("IOTSPHERE_METRICS_PUBLIC", "0")
    assert cloud.http.get("/metrics", headers=auth(cloud.tokens[Role.VIEWER])).status_code == 503  # no key to check


def test_metrics_need_a_person_s_key_when_not_public(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTSPHERE_METRICS_PUBLIC", "0")

    assert cloud.http.get("/metrics").status_code == 401
    assert cloud.http.get("/metrics", headers=auth(cloud.tokens[Role.GATEWAY])).status_code == 403
    assert has(cloud.scrape(**auth(cloud.tokens[Role.VIEWER])), "iotsphere_gateways", state="online")
    assert cloud.http.get("/healthz").status_code == 200  # probes never need a key


def test_request_ids_are_echoed_generated_and_audited(cloud: Cloud) -> None:
    sent = cloud.http.get("/api/health", headers={"X-Request-ID": "lb-7f3a.2"})
    made = cloud.http.get("/api/health")
    unsafe = cloud.http.get("/api/health", headers={"X-Request-ID": "bad id\twith spaces"})
    refused = cloud.http.post(
        "/api/predictions/pred-unknown1/feedback",
        json={"rating": 4},
        headers={**auth(cloud.tokens[Role.VIEWER]), "X-Request-ID": "refused-request-1"},
    )

    assert sent.headers["x-request-id"] == "lb-7f3a.2"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["x-request-id"])
    assert refused.status_code == 403 and refused.headers["x-request-id"] == "refused-request-1"
    entries = AuditLog(cloud.db).entries(action="http.post")
    assert [entry.details["request_id"] for entry in entries] == ["refused-request-1"]


@pytest.mark.mqtt
def test_a_change_made_by_a_service_is_audited_under_the_request_id(cloud: Cloud, worker: IngestWorker) -> None:
    publisher = Publisher(cloud.config.topic_prefix)
    batch = _three_predictions("gw-audit", "43")
    try:
        publisher.send(batch, Up.PREDICTIONS)
    finally:
        publisher.close()
    wait_for(lambda: count(cloud.db, "predictions") == 3, what="stored")

    answer = cloud.http.post(
        f"/api/predictions/{batch.predictions[0].prediction_id}/feedback",
        json={"rating": 4},
        headers={**auth(cloud.tokens[Role.TECHNICIAN]), "X-Request-ID": "rate-it-1"},
    )

    assert answer.status_code == 201, answer.text
    recorded = [e for e in AuditLog(cloud.db).entries(limit=1000) if e.details.get("request_id") == "rate-it-1"]
    assert len(recorded) == 1 and not recorded[0].action.startswith("http.")
