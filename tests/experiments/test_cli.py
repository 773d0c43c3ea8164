"""``iotsphere experiments`` end to end: the real CLI over a real data folder, documents on the real Mosquitto."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from cloud.config import CloudConfig
from iotsphere.cli import main
from tests.experiments.conftest import GATEWAYS, NAME, Lab
from tests.registry.test_http import retained_document

pytestmark = pytest.mark.mqtt


def test_create_start_watch_conclude_and_list(production: CloudConfig, lab: Lab, monkeypatch):
    monkeypatch.setenv("IOTSPHERE_TOPIC_PREFIX", production.topic_prefix)
    runner = CliRunner()
    data = ["--data-dir", str(production.data_dir)]
    mqtt = ["--mqtt", production.mqtt_url]

    def run(*args: str) -> str:
        result = runner.invoke(main, ["experiments", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    created = run("create", NAME, "2", "--mode", "split", "--percent", "50", "--reason", "new anode", *data)
    experiment_id = re.search(r"Created (exp-[0-9a-f]+)", created).group(1)
    assert "error_rate" in created and "planned per arm" in created

    started = run("start", experiment_id, *data, *mqtt)
    assert f"{experiment_id}: running" in started and started.count("Directed ") == len(GATEWAYS)
    assert retained_document(production, GATEWAYS[0]).signed.models[NAME].challenger.version == "2"

    lab.feed(lab.service.store.get(experiment_id), devices=800, error_rate={"champion": 0.4, "challenger": 0.1})
    shown = run("status", experiment_id, *data)
    assert "recommendation: challenger_wins" in shown and "significant" in shown
    as_json = json.loads(run("status", experiment_id, "--json", *data))
    assert as_json["sequential"]["significant"] is True

    concluded = run("conclude", experiment_id, *data, *mqtt)
    assert "decision challenger" in concluded and f"won experiment {experiment_id}" in concluded
    assert retained_document(production, GATEWAYS[0]).signed.models[NAME].version == "2"
    listed = [line.split()[:7] for line in run("list", *data).splitlines()]
    assert [experiment_id, NAME, "2", "1", "split", "concluded", "challenger"] in listed

    refused = runner.invoke(main, ["experiments", "stop", experiment_id, "--reason", "again", *data, *mqtt])
    assert refused.exit_code == 1 and "stop needs it running" in refused.output
    missing = runner.invoke(main, ["experiments", "status", "exp-nope", *data])
    assert missing.exit_code == 1 and "no experiment 'exp-nope'" in missing.output
