"""``iotsphere demo --serve``: after the summary the system keeps running and the dashboard answers with the
operator key the demo printed."""

from __future__ import annotations

import re
import threading
import time

import httpx

from iotsphere.demo.run import run_demo
from tests.demo.test_demo import MOSQUITTO, _small


def test_the_dashboard_answers_on_the_live_system_after_the_summary(tmp_path, isolated, monkeypatch) -> None:
    monkeypatch.setenv("IOTSPHERE_MQTT_URL", MOSQUITTO)
    options = _small(tmp_path, serve_s=20.0)
    lines: list[str] = []
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(run_demo(options, echo=lines.append)))
    runner.start()
    deadline = time.monotonic() + 240
    while not any(line.startswith("── serving") for line in lines):
        assert runner.is_alive() and time.monotonic() < deadline, lines[-20:]
        time.sleep(0.5)

    dashboard = next(line for line in lines if "dashboard http" in line)
    url, key = re.search(r"dashboard (http://\S+)/ .*operator key: (\S+)\)", dashboard).groups()
    assert lines.index("── summary ──") < lines.index(next(line for line in lines if line.startswith("── serving")))
    with httpx.Client(base_url=url, timeout=10) as browser:
        assert browser.post("/login", data={"api_key": key, "next": "/models"}).status_code == 303
        page = browser.get("/models")
        assert page.status_code == 200
        for model in ("component_failure", "usage_pattern", "anomaly"):
            assert model in page.text
        assert "production" in page.text and "demo operator · operator" in page.text  # signed in as the demo's operator
        assert browser.get("/alerts").status_code == 200
    runner.join(120)
    assert not runner.is_alive() and result["ok"], result.get("problems")
