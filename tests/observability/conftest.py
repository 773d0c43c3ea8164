"""Fixtures: a cloud database with a key per role, its API on a real port, and an ingest worker on real Mosquitto."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlite_utils

from cloud.api.app import create_app
from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.ingest import IngestWorker
from cloud.storage import open_database
from tests.api.conftest import key_per_role
from tests.api.server import ThreadedServer
from tests.ingest.helpers import BROKER_URL, forget_session, unique
from tests.observability.scrape import Samples, parse


@dataclass
class Cloud:
    config: CloudConfig
    db: sqlite_utils.Database
    http: httpx.Client
    tokens: dict[Role, str]

    def scrape(self, **headers: str) -> Samples:
        response = self.http.get("/metrics", headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        return parse(response.text)


@pytest.fixture
def cloud(tmp_path) -> Iterator[Cloud]:
    config = CloudConfig(data_dir=tmp_path / "cloud", mqtt_url=BROKER_URL, topic_prefix=f"{unique('obs')}/iotsphere/v1")
    db = open_database(config.database_path)
    tokens = key_per_role(db)
    with ThreadedServer(create_app(config)) as server, httpx.Client(base_url=server.base_url, timeout=10) as http:
        yield Cloud(config, db, http, tokens)
    db.conn.close()


@pytest.fixture
def worker(cloud: Cloud) -> Iterator[IngestWorker]:
    ingest = IngestWorker(cloud.config, client_id=unique("obs-ingest"), shared_group=None)
    ingest.start()
    yield ingest
    ingest.stop()
    forget_session(ingest.client_id)
