"""deploy/prometheus and deploy/alertmanager checked by the real tools: promtool validates the rules and runs their
unit tests (deploy/prometheus/tests/*.yml), amtool validates Alertmanager's configuration."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.observability.prometheus_tools import DEPLOY, PROMETHEUS_DIR, load_yaml, run_tool

RULES = PROMETHEUS_DIR / "rules.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "iotsphere-overview.json"
OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _alerts() -> dict[str, dict]:
    return {rule["alert"]: rule for group in load_yaml(RULES)["groups"] for rule in group["rules"] if "alert" in rule}


def _cases() -> list[dict]:
    return [case for path in RULE_TESTS for test in load_yaml(path)["tests"] for case in test["alert_rule_test"]]


def test_promtool_accepts_the_rules() -> None:
    assert f"SUCCESS: {len(_alerts())} rules found" in run_tool("promtool", "check", "rules", RULES)


def test_every_alert_passes_its_promtool_unit_tests() -> None:
    output = run_tool("promtool", "test", "rules", *RULE_TESTS)
    assert output.count("SUCCESS") == len(RULE_TESTS), output


def test_every_alert_is_tested_firing_and_quiet() -> None:
    fired = {case["alertname"] for case in _cases() if case["exp_alerts"]}
    quiet = {case["alertname"] for case in _cases() if not case["exp_alerts"]}
    assert fired == set(_alerts()), "alerts without a test that fires them"
    assert quiet == set(_alerts()), "alerts without a test that keeps them quiet"


@pytest.mark.parametrize("name", sorted(_alerts()))
def test_every_alert_has_a_severity_summary_and_runbook(name: str) -> None:
    rule = _alerts()[name]
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["annotations"]["summary"].strip()
    runbook = rule["annotations"]["runbook"]
    assert "\n" not in runbook.strip() and ("`" in runbook or " log" in runbook), (
        "a runbook line names what to run or read"
    )


def test_rules_and_dashboard_use_only_documented_metrics() -> None:
    """A renamed metric would leave an alert silent forever: every name must be one docs/operations.md lists."""
    documented = set(re.findall(r"^\| `(iotsphere_\w+)` \|", OPERATIONS.read_text(), flags=re.MULTILINE))
    exprs = [rule["expr"] for rule in _alerts().values()]
    exprs += [
        target["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for target in panel.get("targets", [])
    ]
    used = {re.sub(r"_(bucket|sum|count)$", "", name) for expr in exprs for name in re.findall(r"iotsphere_\w+", expr)}
    assert documented, "the metrics table of docs/operations.md was not found"
    assert used - documented == set()


def test_the_dashboard_reads_the_provisioned_datasource() -> None:
    panels = [panel for panel in json.loads(DASHBOARD.read_text())["panels"] if panel["type"] != "row"]
    assert all(panel["datasource"]["uid"] == "iotsphere-prometheus" for panel in panels)
    datasource = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    assert datasource["datasources"][0]["uid"] == "iotsphere-prometheus"
    assert len({panel["id"] for panel in panels}) == len(panels)


def test_amtool_accepts_the_alertmanager_configuration() -> None:
    output = run_tool("amtool", "check-config", DEPLOY / "alertmanager" / "alertmanager.yml")
    assert "SUCCESS" in output and "1 receivers" in output


def test_compose_mounts_this_configuration_and_hands_prometheus_its_key() -> None:
    compose = load_yaml(DEPLOY.parent / "docker-compose.yml")
    for service in ("prometheus", "alertmanager", "grafana"):
        for volume in compose["services"][service]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY.parent / source).exists(), f"{service} mounts {source}: no such path"
    (secret,) = compose["services"]["prometheus"]["secrets"]
    assert secret in compose["secrets"]
    jobs = load_yaml(PROMETHEUS_DIR / "prometheus.yml")["scrape_configs"]
    assert {job["authorization"]["credentials_file"] for job in jobs} == {f"/run/secrets/{secret}"}
