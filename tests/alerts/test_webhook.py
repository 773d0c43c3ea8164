"""The inbox's webhook speaks Alertmanager's format: a real Alertmanager and the inbox post to one receiver, and the
receiver reads both the same way; what the receiver refuses stays due and is sent on a later pass."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from cloud.alerts.inbox import AlertInbox
from cloud.alerts.webhook import deliver
from cloud.pipeline.runs import RunStore
from cloud.storage import open_database
from tests.observability.prometheus_tools import tool
from tests.postgres_run import database_at
from tests.private_broker import free_port


class Receiver:
    """A webhook receiver on loopback: keeps every JSON body; answers ``status`` (500 to refuse)."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.status == 200:
                    receiver.bodies.append(json.loads(body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(self.bodies) >= count, f"the receiver got {len(self.bodies)} bodies, not {count}"
        return self.bodies


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    served = Receiver()
    yield served
    served.server.shutdown()


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(database_at(tmp_path / "cloud" / "iotsphere.db"))
    yield database
    database.close()


def _alertmanager_body(folder: Path, receiver: Receiver) -> dict:
    """What a real Alertmanager posts for one alert, routed to ``receiver`` at once."""
    port, cluster = free_port(), free_port()
    config = {
        "route": {"receiver": "hook", "group_wait": "0s", "group_interval": "1s"},
        "receivers": [{"name": "hook", "webhook_configs": [{"url": receiver.url, "send_resolved": True}]}],
    }
    (folder / "alertmanager.yml").write_text(yaml.safe_dump(config))
    command = [
        tool("prometheus-alertmanager"),
        f"--config.file={folder / 'alertmanager.yml'}",
        f"--storage.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--cluster.listen-address=127.0.0.1:{cluster}",
    ]
    with (folder / "alertmanager.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            alert = {
                "labels": {"alertname": "IoTSphereIngestStalled", "severity": "critical"},
                "annotations": {"summary": "ingest stored nothing for 10 minutes"},
                "startsAt": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            }
            assert httpx.post(f"{url}/api/v2/alerts", json=[alert], timeout=5).status_code == 200
            return receiver.wait_for(1)[0]
        finally:
            process.terminate()
            process.wait(10)


def _shape(body: dict) -> tuple:
    """What a receiver relies on: the envelope's keys and types, each alert's keys and types."""
    alert_keys = {key: type(value).__name__ for alert in body["alerts"] for key, value in alert.items()}
    return {key: type(value).__name__ for key, value in body.items()}, alert_keys


def test_the_inbox_posts_what_alertmanager_posts(db, receiver: Receiver, tmp_path: Path) -> None:
    from_alertmanager = _alertmanager_body(tmp_path, receiver)
    runs = RunStore(db)
    run = runs.create("component_failure", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC), "t")
    runs.claim(run.run_id)
    runs.fail(run.run_id, "no feature rows")
    [alert_id] = AlertInbox(db).scan().raised

    with httpx.Client(timeout=5) as client:
        assert deliver(db, receiver.url, "http://127.0.0.1:8080", client) == (1, 0)
    from_inbox = receiver.bodies[-1]

    assert _shape(from_inbox) == _shape(from_alertmanager)
    assert from_inbox["version"] == from_alertmanager["version"] == "4"
    [alert] = from_inbox["alerts"]
    assert alert["status"] == "firing" and alert["labels"]["alertname"] == "training_failed"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["generatorURL"] == f"http://127.0.0.1:8080/alerts/{alert_id}"
    datetime.fromisoformat(alert["startsAt"])


def test_a_refused_delivery_stays_due_and_resolution_is_sent_too(db, receiver: Receiver) -> None:
    runs = RunStore(db)
    run = runs.create("component_failure", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC), "t")
    runs.claim(run.run_id)
    runs.fail(run.run_id, "boom")
    inbox = AlertInbox(db)
    [alert_id] = inbox.scan().raised

    with httpx.Client(timeout=5) as client:
        receiver.status = 500
        assert deliver(db, receiver.url, "http://x", client) == (0, 1)
        receiver.status = 200
        assert deliver(db, receiver.url, "http://x", client) == (1, 0)
        assert deliver(db, receiver.url, "http://x", client) == (0, 0)  # nothing new: nothing sent
        inbox.resolve(alert_id, "key:ops")
        assert deliver(db, receiver.url, "http://x", client) == (1, 0)

    statuses = [body["alerts"][0]["status"] for body in receiver.bodies]
    assert statuses == ["firing", "resolved"]
    resolved = receiver.bodies[-1]["alerts"][0]
    assert resolved["endsAt"] != "0001-01-01T00:00:00Z"
    datetime.fromisoformat(resolved["endsAt"])
