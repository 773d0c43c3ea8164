"""End to end on a phone-sized Chromium: a technician pairs with a gateway whose broker is down, logs an outcome
(tapping Save again while the first submit waits for its answer), the broker comes back, and the cloud holds the
outcome once, linked to the prediction.

A real agent process, a private Mosquitto that is stopped and started, the cloud's ingest on SQLite, and Debian's
Chromium that may reach the gateway only; axe-core checks every page and the heater's page is photographed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import expect

from cloud.config import CloudConfig
from cloud.ingest.worker import IngestWorker
from cloud.storage import iso, open_database
from edge_agent.local_api import TOKEN_ENV
from firmware_sim.live import Fleet, connect
from shared.topics import telemetry_topic
from tests.edge.mqtt_helpers import unique_prefix, wait_for
from tests.edge.test_technician_page import provision
from tests.private_broker import PrivateBroker, free_port
from tests.web.conftest import SCREENSHOTS, BrowserLog, browser, offline_page, serious_accessibility_violations

PROJECT = Path(__file__).parents[2]
#: an iPhone 12-14's CSS pixels
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}

assert browser  # the Chromium fixture of tests/web, used here by name


def _agent(gateway_id: str, prefix: str, data_dir: Path, broker: PrivateBroker, port: int, console: Path):
    arguments = ["run", "--gateway", gateway_id, "--mqtt", broker.url, "--data-dir", str(data_dir)]
    arguments += ["--prefix", prefix, "--local-api-port", str(port), "--status-interval", "1"]
    env = {key: value for key, value in os.environ.items() if key != TOKEN_ENV}
    with console.open("w") as output:
        return subprocess.Popen(
            [sys.executable, "-c", "from edge_agent.cli import edge; edge()", *arguments],
            cwd=PROJECT,
            env={**env, "PYTHONPATH": str(PROJECT)},
            stderr=output,
        )


def _console_code(console: Path) -> str:
    """The pairing code the gateway printed when its page started."""
    found: list[str] = []

    def printed() -> bool:
        found[:] = re.findall(r"pairing code (\w{4}-\w{4})", console.read_text())
        return bool(found)

    wait_for(printed, timeout=30, what="the pairing code on the gateway's console")
    return found[0]


def _fits(page) -> bool:
    """Nothing makes the phone scroll sideways."""
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["viewport"]["width"]


def test_a_phone_pairs_logs_an_outcome_offline_and_the_cloud_gets_it_once(tmp_path: Path, browser):
    broker = PrivateBroker(tmp_path / "broker")
    broker.start()
    gateway_id, prefix = f"gw-{uuid.uuid4().hex[:8]}", unique_prefix()
    data_dir, port, console = tmp_path / "gw", free_port(), tmp_path / "console.txt"
    provision(data_dir, gateway_id)
    config = CloudConfig(data_dir=tmp_path / "cloud", mqtt_url=broker.url, topic_prefix=prefix)
    db = open_database(config.database_path)
    ingest = IngestWorker(config, client_id=f"ingest-{uuid.uuid4().hex[:8]}", shared_group=None)
    ingest.start()
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    fleet = Fleet(gateway_id, heaters=2, seed=11, start=start)
    device_id = fleet.device_ids[0]
    agent = _agent(gateway_id, prefix, data_dir, broker, port, console)
    base_url = f"http://127.0.0.1:{port}"
    try:
        code = _console_code(console)
        online = "SELECT count(*) FROM gateways WHERE gateway_id = ? AND online"
        wait_for(lambda: db.execute(online, [gateway_id]).fetchone()[0], timeout=30, what="the agent online")
        sensors = connect(broker.url, f"sensors-{uuid.uuid4().hex[:8]}")
        sent = [
            sensors.publish(telemetry_topic(gateway_id, reading.device_id), reading.to_json(), qos=1)
            for _ in range(15 * 60 + 5)
            for reading in fleet.step()
        ]
        for info in sent:
            info.wait_for_publish(10)
        sensors.disconnect()
        sensors.loop_stop()
        last_window = iso(start + timedelta(hours=15))
        latest = "SELECT prediction_id FROM predictions WHERE device_id = ? AND feature_window_end = ?"
        wait_for(lambda: db.execute(latest, [device_id, last_window]).fetchall(), timeout=60, what="a prediction")
        [(prediction_id,)] = db.execute(latest, [device_id, last_window]).fetchall()

        broker.stop()  # the site loses its link; the technician arrives with a phone
        log = BrowserLog()
        page = offline_page(browser, base_url, log, bypass_csp=True, **PHONE)  # axe is injected as a script
        page.goto(f"{base_url}/")
        assert serious_accessibility_violations(page) == []
        page.fill("#code", code.lower())
        page.click("button:has-text('Pair')")
        page.wait_for_url(f"{base_url}/")
        assert "offline" in page.inner_text("main")
        assert serious_accessibility_violations(page) == []
        page.click(f"a[href='/heaters/{device_id}']")
        page.wait_for_url(f"{base_url}/heaters/{device_id}")
        page.select_option("#component", "heating_element")
        page.check("input[name=result][value=replaced]")
        page.fill("#technician", "Ana")
        page.fill("#notes", "element burnt out, replaced")
        # a slow answer and an impatient second tap: the first POST is held until the second is answered
        held: list = []
        page.route(
            f"{base_url}/heaters/{device_id}/outcomes", lambda route: route.continue_() if held else held.append(route)
        )
        save = page.locator("button:has-text('Save outcome')")
        save.scroll_into_view_if_needed()
        box = save.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.touchscreen.tap(x, y)
        while not held:  # Playwright runs the route handler while the page waits, not while Python sleeps
            page.wait_for_timeout(50)
        page.touchscreen.tap(x, y)  # raw taps: nothing waits for the first submit's answer
        # the second submit aborts the first's navigation: wait_for_url would report that abort (it follows
        # navigations), so the address is polled until the second submit's answer is shown
        logged = re.compile(rf"{re.escape(base_url)}/heaters/{device_id}\?logged=\w+")
        expect(page).to_have_url(logged, timeout=30_000)
        first = held[0].fetch(max_redirects=0)  # the first submit reaches the gateway too, after the second
        assert first.status == 303 and page.url == base_url + first.headers["location"], "the same outcome"
        assert "saved on the gateway" in page.inner_text("main")
        assert serious_accessibility_violations(page) == []
        assert _fits(page)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "technician.png"), full_page=True)
        page.click("a:has-text('To send')")
        page.wait_for_url(f"{base_url}/outbox")
        assert "queued" in page.inner_text("main")
        assert serious_accessibility_violations(page) == [] and _fits(page)

        broker.start()
        outcomes = "SELECT device_id, component, result, prediction_id, technician FROM outcomes"
        wait_for(lambda: db.execute(outcomes).fetchall(), timeout=90, what="the outcome in the cloud")
        time.sleep(2)  # a second copy, had the second tap queued one, would be right behind the first
        assert db.execute(outcomes).fetchall() == [(device_id, "heating_element", "replaced", prediction_id, "Ana")]
        page.reload()
        assert "sent" in page.inner_text("main") and "queued" not in page.inner_text("main")
        # the held first submit, given up by the second, is a request the browser cancelled itself: not a failure
        assert log.console_errors == [] and log.failed == [] and log.refused == []
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
        ingest.stop()
        broker.stop()
