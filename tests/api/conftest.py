"""Fixtures: a cloud data folder, the API served over real HTTP, and one key per role."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlite_utils

from cloud.api.app import create_app
from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.storage import open_database
from tests.api.server import ThreadedServer


@pytest.fixture
def config(tmp_path: Path) -> CloudConfig:
    return CloudConfig(data_dir=tmp_path / "cloud")


@pytest.fixture
def db(config: CloudConfig) -> Iterator[sqlite_utils.Database]:
    """The cloud database as ingest sees it: a separate connection from the API's."""
    database = open_database(config.database_url)
    yield database
    database.close()


def key_per_role(db: sqlite_utils.Database) -> dict[Role, str]:
    """One live key per role (the gateway key belongs to gw-001)."""
    store = KeyStore(db)
    return {
        role: store.create(role, f"test {role.value}", "gw-001" if role == Role.GATEWAY else None).token
        for role in Role
    }


@pytest.fixture
def tokens(db: sqlite_utils.Database) -> dict[Role, str]:
    return key_per_role(db)


@dataclass(frozen=True)
class ServedCloud:
    config: CloudConfig
    tokens: dict[Role, str]
    http: httpx.Client
    base_url: str


@contextmanager
def served_cloud(config: CloudConfig) -> Iterator[ServedCloud]:
    """Keys for every role and the API on a real port, for module-scoped fixtures of read-only tests."""
    db = open_database(config.database_url)
    try:
        tokens = key_per_role(db)
    finally:
        db.close()
    with ThreadedServer(create_app(config)) as server, httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield ServedCloud(config, tokens, client, server.base_url)


@pytest.fixture
def base_url(config: CloudConfig, db: sqlite_utils.Database) -> Iterator[str]:
    with ThreadedServer(create_app(config)) as server:
        yield server.base_url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
