"""Issue 12 end to end in Debian's Chromium: an operator promotes version 2 and rolls it back from the pages, and a
running gateway (``iotsphere edge run`` as its own process, trusting the cloud's TUF root) switches each time.

The cloud is the production app on a real port with its ingest worker storing the gateway's status from the real
Mosquitto under this test's topic prefix. A switch counts only when the Gateway page shows the version the gateway
reported running, and the agent itself says so: its retained ``up/status`` and its ``active.json`` on disk.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.config import PASSPHRASE_ENV, CloudConfig
from cloud.ingest import IngestWorker
from cloud.registry import MLModelRegistry
from cloud.releases import tuf_repo
from cloud.releases.model_rows import record_release
from cloud.releases.publisher import RetainedPublisher, desired_topic
from cloud.storage import open_database
from iotsphere.cli import main
from shared.messages import GatewayStatus
from shared.topics import Up, up_topic
from tests.api.conftest import ServedCloud, served_cloud
from tests.edge.mqtt_helpers import Collector, unique_prefix, wait_for
from tests.edge.releases import build_serving_release
from tests.ingest.helpers import forget_session
from tests.rows import count
from tests.web.conftest import BrowserLog, offline_page
from tests.web.test_pages_browser import _sign_in

pytestmark = pytest.mark.mqtt

BROKER = "mqtt://127.0.0.1:1883"
NAME = "component_failure"
PASSPHRASE = "browser gateway passphrase"
PROJECT = Path(__file__).resolve().parents[2]
#: the Gateway page polls its status table every 10 s; the agent needs a few seconds to fetch and check a release
SWITCH_SECONDS = 45


@contextmanager
def released_cloud(folder: Path) -> Iterator[ServedCloud]:
    """Versions 1 and 2 trained for the features the agent computes, signed into TUF and released (2 passed its
    evaluation), served on a real port with ingest storing what gateways report."""
    config = CloudConfig(
        data_dir=folder / "cloud",
        mqtt_url=BROKER,
        topic_prefix=unique_prefix(),
        ingest_client_id=f"ingest-web-{uuid.uuid4().hex[:8]}",
    )
    tuf_repo.init_repository(config, PASSPHRASE)
    db = open_database(config.database_url)
    try:
        for version, seed in (("1", 0), ("2", 1)):
            built = build_serving_release(version, seed=seed)
            record_release(db, tuf_repo.add_release(config, PASSPHRASE, built.release_bytes, built.onnx_bytes))
        MLModelRegistry(db).record_evaluation(NAME, "2", True, {"recall": 0.91, "champion_recall": 0.84})
    finally:
        db.close()
    ingest = IngestWorker(config)
    ingest.start()
    try:
        with served_cloud(config) as served:
            yield served
    finally:
        ingest.stop()
        forget_session(config.ingest_client_id)


@contextmanager
def edge_agent(cloud: ServedCloud, gateway_id: str, data_dir: Path) -> Iterator[subprocess.Popen]:
    """``iotsphere edge run`` as its own process with a gateway key, stopped with SIGTERM (killed if it hangs); then
    its director document and status are cleared from the shared broker."""
    db = open_database(cloud.config.database_url)
    try:
        token = KeyStore(db).create(Role.GATEWAY, "browser test gateway", gateway_id).token
    finally:
        db.close()
    arguments = ["edge", "run", "--gateway", gateway_id, "--cloud", cloud.base_url, "--mqtt", BROKER]
    arguments += ["--data-dir", str(data_dir), "--prefix", cloud.config.topic_prefix]
    arguments += ["--trusted-root", str(tuf_repo.trusted_root_path(cloud.config))]
    log = data_dir.parent / f"{gateway_id}.log"
    with log.open("w") as stderr:
        agent = subprocess.Popen(
            [sys.executable, "-c", "from iotsphere.cli import main; main()", *arguments],
            cwd=PROJECT,
            env={**os.environ, "PYTHONPATH": str(PROJECT), "IOTSPHERE_GATEWAY_KEY": token},
            stderr=stderr,
        )
        try:
            yield agent
        finally:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(20)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait(5)
            print(log.read_text()[-4000:])  # shown by pytest when the test failed
            with RetainedPublisher(BROKER) as publisher:  # leave nothing retained on the shared broker
                publisher.publish(desired_topic(cloud.config, gateway_id), b"")
                publisher.publish(up_topic(gateway_id, Up.STATUS, cloud.config.topic_prefix), b"")


class RunningGateway:
    """What the agent itself says it runs: its retained status on the broker and its pointer on disk."""

    def __init__(self, cloud: ServedCloud, gateway_id: str, data_dir: Path, process: subprocess.Popen):
        self.data_dir, self.process = data_dir, process
        self.status = Collector(BROKER, up_topic(gateway_id, Up.STATUS, cloud.config.topic_prefix))

    def reported(self) -> str | None:
        payloads = [p for p in self.status.payloads() if p]
        status = GatewayStatus.model_validate_json(payloads[-1]) if payloads else None
        model = next((m for m in status.models if m.model_name == NAME), None) if status and status.online else None
        return model.active_version if model else None

    def on_disk(self) -> str | None:
        pointer = self.data_dir / "models" / NAME / "active.json"
        return json.loads(pointer.read_text())["version"] if pointer.exists() else None

    def wait_running(self, version: str) -> None:
        try:
            wait_for(
                lambda: self.process.poll() is None and self.reported() == version and self.on_disk() == version,
                SWITCH_SECONDS,
                f"the agent reporting version {version} active",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}: its status says {self.reported()}, its disk {self.on_disk()}") from None
        assert self.process.poll() is None, "the agent process died"


def _gateway_page_shows(page, cloud: ServedCloud, gateway_id: str, version: str) -> None:
    """The Gateway page, as its polling refreshes it, says the gateway last reported running ``version``."""
    from playwright.sync_api import expect

    page.goto(f"{cloud.base_url}/fleet/{gateway_id}")
    row = page.locator("#gateway-status").get_by_role("row").filter(has=page.get_by_role("cell", name=NAME))
    running = row.get_by_role("cell").nth(1)  # "Runs (last status)"
    expect(running).to_have_text(re.compile(rf"^v{version}\b"), timeout=SWITCH_SECONDS * 1000)


def test_a_running_gateway_switches_when_an_operator_promotes_and_rolls_back_from_the_pages(
    tmp_path: Path, browser, monkeypatch
) -> None:
    from playwright.sync_api import expect

    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    gateway_id = f"gw-web-{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path / "gateway"
    with released_cloud(tmp_path) as cloud, edge_agent(cloud, gateway_id, data_dir) as process:
        gateway = RunningGateway(cloud, gateway_id, data_dir, process)
        db = open_database(cloud.config.database_url)
        try:
            wait_for(lambda: count(db, "gateways", gateway_id=gateway_id) == 1, 30, "the cloud storing the gateway")
            promoted = CliRunner().invoke(
                main,
                ["models", "promote", NAME, "1", "--reason", "first in the field", "--mqtt", BROKER]
                + ["--data-dir", str(cloud.config.data_dir)],
                env={"IOTSPHERE_TOPIC_PREFIX": cloud.config.topic_prefix},
            )
            assert promoted.exit_code == 0 and gateway_id in promoted.output, promoted.output
            gateway.wait_running("1")

            log = BrowserLog()
            page = offline_page(browser, cloud.base_url, log)
            _sign_in(page, cloud, Role.OPERATOR)
            page.goto(f"{cloud.base_url}/models/{NAME}")
            version_two = page.get_by_role("row").filter(has=page.get_by_role("cell", name="2", exact=True))
            version_two.get_by_role("link", name="Promote").click()
            expect(page.get_by_role("heading", name="Evaluation gate")).to_be_visible()
            expect(page.get_by_text("Passed: this version beat the champion")).to_be_visible()
            page.get_by_label("Reason").fill("beats version 1 on the held-out month")
            page.get_by_role("button", name="Promote and direct gateways").click()
            page.wait_for_url(f"{cloud.base_url}/models/{NAME}")
            gateway.wait_running("2")
            _gateway_page_shows(page, cloud, gateway_id, "2")

            page.goto(f"{cloud.base_url}/models/{NAME}")
            page.get_by_label("Reason").fill("false alarms on version 2")
            page.get_by_role("button", name="Roll back").click()
            page.wait_for_url(f"{cloud.base_url}/models/{NAME}")
            gateway.wait_running("1")
            _gateway_page_shows(page, cloud, gateway_id, "1")
            assert log.console_errors == [] and log.failed == [] and log.refused == []
        finally:
            db.close()
            gateway.status.close()
