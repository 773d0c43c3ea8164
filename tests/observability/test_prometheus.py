"""A real Prometheus, configured from deploy/prometheus, scrapes a running cloud: the API and an ingest process's
side port, with the scrape key from a credentials file (IOTSPHERE_METRICS_PUBLIC=0, so loopback needs it too).
After known traffic the main series carry the right values, the rules load and evaluate, and every dashboard
query is valid PromQL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cloud.api.roles import Role
from cloud.ingest import IngestWorker
from cloud.observability.http import Sidecar
from shared.topics import Up, up_topic
from tests.ingest.helpers import Publisher, count, predictions, status, unique, wait_for
from tests.observability.conftest import Cloud
from tests.observability.prometheus_tools import DEPLOY, PROMETHEUS_DIR, Prometheus, load_yaml, run_tool
from tests.observability.scrape import value


def _config(folder: Path, api: str, ingest: str, key_file: Path) -> dict:
    """deploy/prometheus/prometheus.yml with this test's targets, key file and a 1 s interval; rules and the file
    of ingest targets sit beside it, as in the repository."""
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    del config["alerting"]  # no Alertmanager here: alerts are read from Prometheus itself
    shutil.copy(PROMETHEUS_DIR / "rules.yml", folder / config["rule_files"][0])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for job in jobs.values():
        job["authorization"]["credentials_file"] = str(key_file)
    jobs["iotsphere-api"]["static_configs"] = [{"targets": [api]}]
    (folder / "targets").mkdir()
    (folder / "targets" / "ingest-test.yml").write_text(json.dumps([{"targets": [ingest]}]))
    return config


def _traffic(cloud: Cloud, version: str) -> None:
    one = predictions("gw-prom").predictions[0]
    batch = [one.model_copy(update={"prediction_id": unique("pred"), "model_version": version}) for _ in range(3)]
    publisher = Publisher(cloud.config.topic_prefix)
    try:
        publisher.send(predictions("gw-prom").model_copy(update={"predictions": batch}), Up.PREDICTIONS)
        publisher.send(status("gw-prom"), Up.STATUS)
        publisher.raw(up_topic("gw-prom", Up.PREDICTIONS, cloud.config.topic_prefix), b"{not json")
    finally:
        publisher.close()
    wait_for(lambda: count(cloud.db, "predictions") == 3 and count(cloud.db, "dead_letters") == 1, what="stored")
    for _ in range(4):
        assert cloud.http.get("/api/health").status_code == 200


@pytest.mark.mqtt
@pytest.mark.timeout(60)
def test_prometheus_scrapes_the_cloud_and_sees_known_traffic(
    cloud: Cloud, worker: IngestWorker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IOTSPHERE_METRICS_PUBLIC", "0")
    key_file = tmp_path / "metrics-key"
    key_file.write_text(cloud.tokens[Role.VIEWER] + "\n")  # as `create-key > file` writes it
    viewer = {"Authorization": f"Bearer {cloud.tokens[Role.VIEWER]}"}
    assert cloud.http.get("/metrics").status_code == 401  # the key below is what lets Prometheus in
    before = cloud.scrape(**viewer)
    version = unique("v")
    sidecar = Sidecar(cloud.config, "127.0.0.1", 0)
    ingest_address = sidecar.start()
    try:
        config = _config(tmp_path, cloud.http.base_url.netloc.decode(), ingest_address, key_file)
        with Prometheus(tmp_path, config) as prometheus:
            run_tool("promtool", "check", "config", prometheus.config_file)
            _traffic(cloud, version)

            def api(expr: str) -> str:
                return expr.replace("{", '{job="iotsphere-api",', 1)

            prometheus.wait_for('up{job="iotsphere-api"}', 1)
            prometheus.wait_for('up{job="iotsphere-ingest"}', 1)
            latency = f'{{model="component_failure",version="{version}"}}'
            prometheus.wait_for(api(f"iotsphere_predictions_total{latency}"), 3)
            prometheus.wait_for(api(f"iotsphere_edge_inference_latency_seconds_count{latency}"), 3)
            prometheus.wait_for(api(f"iotsphere_edge_inference_latency_seconds_sum{latency}"), 3 * 0.0015)
            malformed = value(before, "iotsphere_ingest_dead_letters_total", reason="malformed") + 1
            prometheus.wait_for(api('iotsphere_ingest_dead_letters_total{reason="malformed"}'), malformed)
            stored = value(before, "iotsphere_ingest_messages_total", channel="predictions") + 1
            prometheus.wait_for(api('iotsphere_ingest_messages_total{channel="predictions"}'), stored)
            health = {"route": "/api/health", "method": "GET", "status": "200"}
            prometheus.wait_for(
                api('iotsphere_http_requests_total{route="/api/health",method="GET",status="200"}'),
                value(before, "iotsphere_http_requests_total", **health) + 4,
            )
            prometheus.wait_for(api('iotsphere_gateways{state="online"}'), 1)
            assert prometheus.value(api('iotsphere_gateways{state="offline"}')) == 0
            assert prometheus.value(api('iotsphere_training_runs{state="failed"}')) == 0
            assert prometheus.value(api('iotsphere_rollouts{state="halted"}')) == 0
            client = f'{{client="{worker.client_id}"}}'
            assert (
                prometheus.value(f'iotsphere_broker_connected{{job="iotsphere-ingest",client="{worker.client_id}"}}')
                == 1
            )
            assert prometheus.value(api(f"iotsphere_broker_connected{client}")) == 1
            # the ingest process exports no database gauges: one target (the API) does
            assert prometheus.query('iotsphere_gateways{job="iotsphere-ingest"}') == {}

            _rules_evaluate_and_stay_quiet(prometheus)
            _dashboard_queries_are_valid(prometheus)
    finally:
        sidecar.stop()


def _rules_evaluate_and_stay_quiet(prometheus: Prometheus) -> None:
    groups = prometheus.api("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == len([r for g in load_yaml(PROMETHEUS_DIR / "rules.yml")["groups"] for r in g["rules"]])
    wait_for(
        lambda: all(
            rule.get("lastEvaluation", "").startswith("2")
            for g in prometheus.api("rules")["groups"]
            for rule in g["rules"]
        ),
        what="every rule evaluated",
    )
    rules = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
    assert [rule["name"] for rule in rules if rule["health"] != "ok"] == []
    # a healthy cloud: nothing fires. Pending alerts are allowed: whether the audit's wait for its first checkpoint
    # (3 h) is pending yet depends on which scrape the first evaluation saw, and in a whole-suite run this process's
    # counters carry earlier tests' traffic, so a rate over the few scrapes here may read 0 (IngestStalled's
    # condition) without anything being wrong; each alert's firing and quiet cases are promtool's tests
    alerts = {dict(labels)["alertname"]: dict(labels)["alertstate"] for labels in prometheus.query("ALERTS")}
    assert [name for name, state in alerts.items() if state == "firing"] == []


def _dashboard_queries_are_valid(prometheus: Prometheus) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "iotsphere-overview.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            prometheus.api("query", query=target["expr"])  # asserts status success: valid PromQL
