"""The cloud on PostgreSQL through its real path: ``iotsphere cloud init`` and ``cloud release`` with
``IOTSPHERE_DATABASE_URL=postgresql://…``, then ``cloud serve`` as a process (API, ingest worker, the periodic
workers), a gateway's features and predictions over the machine's Mosquitto, read back through the API; the rows
are in PostgreSQL and no SQLite file is made."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.data import engine as engines
from cloud.data.postgres import dispose_engines
from cloud.storage import open_database
from iotsphere.cli import main
from shared.topics import Up
from tests.api.conftest import auth
from tests.ingest.helpers import BROKER_URL, Publisher, features, forget_session, predictions
from tests.postgres_run import SERVER, field_key, schema_url
from tests.private_broker import free_port, listening
from tests.releases.conftest import PASSPHRASE, Artifacts, artifacts, onnx_models  # noqa: F401, F811 (fixtures)

pytestmark = [pytest.mark.postgres, pytest.mark.mqtt]


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh PostgreSQL schema of its own (whatever database the rest of the run uses), dropped afterwards."""
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    admin = engines.create(SERVER)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {name}"))
    try:
        yield name
    finally:
        dispose_engines()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {name} CASCADE"))
        admin.dispose()


def test_init_release_serve_and_ingest_run_on_postgresql(
    tmp_path: Path,
    schema: str,
    artifacts: Callable[..., Artifacts],  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data_dir, port, prefix = tmp_path / "cloud", free_port(), f"test-{uuid.uuid4().hex[:8]}/iotsphere/v1"
    environment = {
        "IOTSPHERE_DATABASE_URL": schema_url(schema),
        "IOTSPHERE_FIELD_KEY": field_key(),
        "IOTSPHERE_KEY_PASSPHRASE": PASSPHRASE,
        "IOTSPHERE_TOPIC_PREFIX": prefix,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    cli = CliRunner()
    initialised = cli.invoke(main, ["cloud", "init", "--data-dir", str(data_dir)])
    assert initialised.exit_code == 0, initialised.output
    released = cli.invoke(main, ["cloud", "release", str(artifacts().directory), "--data-dir", str(data_dir)])
    assert released.exit_code == 0, released.output
    config = CloudConfig(data_dir=data_dir)
    db = open_database(config.database_url)
    token = KeyStore(db).create(Role.VIEWER, "end to end").token
    db.close()

    client_id = f"ingest-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-c", "from iotsphere.cli import main; main()", "cloud", "serve"]
    command += ["--port", str(port), "--data-dir", str(data_dir), "--mqtt", BROKER_URL]
    env = {**os.environ, **environment, "IOTSPHERE_INGEST_CLIENT_ID": client_id}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    publisher = Publisher(prefix)
    try:
        _wait_for_port(port, process)
        base = f"http://127.0.0.1:{port}"
        health = httpx.get(f"{base}/api/health").json()
        assert health["database_ok"] is True and health["revision"] is not None
        models = httpx.get(f"{base}/api/models", headers=auth(token))
        assert models.status_code == 200, models.text
        assert [(v["model_name"], v["model_version"]) for m in models.json() for v in m["versions"]] == [
            ("component_failure", "1")
        ]

        publisher.send(features(gateway="gw-pg", devices=("h-pg",)), Up.FEATURES)
        publisher.send(predictions(gateway="gw-pg", prediction_id="pred-postgres"), Up.PREDICTIONS)
        prediction = _eventually(
            httpx.Client(base_url=base, headers=auth(token)), "/api/predictions/water-heaters/h1/component_failure"
        )
        stored_features = httpx.get(f"{base}/api/features/h-pg", headers=auth(token)).json()
    finally:
        publisher.close()
        process.terminate()
        _, stderr = process.communicate(timeout=30)
        forget_session(client_id)

    assert process.returncode == 0, stderr
    assert prediction["prediction_id"] == "pred-postgres" and prediction["outputs"] == {"heating_element": 0.25}
    assert stored_features["feature_names"] == ["temp_mean", "temp_slope", "power_mean"]
    assert [row["values"] for row in stored_features["rows"]] == [[1.5, None, 3.0]]
    admin = engines.create(SERVER)
    with admin.connect() as connection:  # in PostgreSQL, in this test's schema
        stored = connection.execute(text(f"SELECT gateway_id FROM {schema}.predictions")).scalars().all()
        releases = connection.execute(text(f"SELECT model_version FROM {schema}.models")).scalars().all()
    admin.dispose()
    assert stored == ["gw-pg"] and releases == ["1"]
    assert not list(data_dir.glob("*.db*"))  # no SQLite file anywhere in the data folder


def _eventually(client: httpx.Client, path: str, timeout: float = 20) -> dict:
    deadline, response = time.monotonic() + timeout, None
    with client:
        while time.monotonic() < deadline:
            response = client.get(path)
            if response.status_code == 200:
                return response.json()
            time.sleep(0.1)
    raise AssertionError(f"{path}: {response and response.status_code} {response and response.text}")


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not listening(port):
        if process.poll() is not None:
            raise RuntimeError(f"cloud serve exited with {process.returncode}: {process.stderr.read()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listening on {port}")
        time.sleep(0.05)
