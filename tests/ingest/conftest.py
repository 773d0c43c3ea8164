"""Real Mosquitto on 127.0.0.1:1883, real SQLite in tmp_path; each test gets its own topic prefix and client ids."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from cloud.config import CloudConfig
from cloud.ingest import IngestWorker
from cloud.storage import open_database
from tests.ingest.helpers import BROKER_URL, Publisher, forget_session, unique


@pytest.fixture
def config(tmp_path) -> CloudConfig:
    return CloudConfig(data_dir=tmp_path, mqtt_url=BROKER_URL, topic_prefix=f"{unique('test')}/iotsphere/v1")


@pytest.fixture
def make_worker(config) -> Iterator[Callable[..., IngestWorker]]:
    """Build (not start) workers on the test's prefix; every one still running is stopped at the end."""
    workers: list[IngestWorker] = []

    def make(**kwargs) -> IngestWorker:
        kwargs.setdefault("client_id", unique("ingest"))
        worker = IngestWorker(config, **kwargs)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()
    for client_id in {worker.client_id for worker in workers}:
        forget_session(client_id)


@pytest.fixture
def publisher(config) -> Iterator[Publisher]:
    pub = Publisher(config.topic_prefix)
    yield pub
    pub.close()


@pytest.fixture
def db(config):
    database = open_database(config.database_url)
    yield database
    database.close()
