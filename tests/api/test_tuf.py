"""The TUF routes: a real repository from cloud.releases, read by python-tuf's ngclient through the API."""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tuf.api.exceptions import DownloadHTTPError
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.releases import tuf_repo
from tests.api.conftest import ServedCloud, auth, served_cloud

PASSPHRASE = "api tests passphrase"


class KeyedFetcher(FetcherInterface):
    """What a gateway gives ngclient: every download carries its API key."""

    def __init__(self, token: str):
        self.client = httpx.Client(headers=auth(token), timeout=10)

    def _fetch(self, url: str) -> Iterator[bytes]:
        response = self.client.get(url)
        if response.status_code >= 400:
            raise DownloadHTTPError(f"HTTP {response.status_code}: {response.text}", response.status_code)
        return iter([response.content])


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[ServedCloud]:
    """A real repository with bait beside it (a hidden file, a symlink out), served once for the read-only tests."""
    config = CloudConfig(data_dir=tmp_path_factory.mktemp("tuf") / "cloud")
    tuf_repo.init_repository(config, PASSPHRASE)
    (config.tuf_dir / "targets" / ".secret").write_text("hidden")
    with served_cloud(config) as cloud:
        outside = config.data_dir / "outside.txt"
        outside.write_text("not the repository's")
        os.symlink(outside, config.tuf_dir / "targets" / "escape")  # a link out of the folder
        yield cloud


def _updater(tmp_path: Path, config: CloudConfig, base_url: str, token: str) -> Updater:
    client_dir = tmp_path / "gateway"
    (client_dir / "metadata").mkdir(parents=True)
    return Updater(
        metadata_dir=str(client_dir / "metadata"),
        metadata_base_url=f"{base_url}/tuf/metadata/",
        target_dir=str(client_dir / "targets"),
        target_base_url=f"{base_url}/tuf/targets/",
        fetcher=KeyedFetcher(token),
        bootstrap=tuf_repo.trusted_root_bytes(config),
    )


def _prefixed_target(config: CloudConfig, target: str) -> str:
    """The hash-prefixed path the repository stores a target under (consistent snapshots)."""
    (prefixed, *_) = tuf_repo.list_targets(config)[target].get_prefixed_paths()
    return prefixed


def test_ngclient_refreshes_and_downloads_a_target_through_the_api(tmp_path, served: ServedCloud) -> None:
    repository = served.config
    updater = _updater(tmp_path, repository, served.base_url, served.tokens[Role.GATEWAY])

    updater.refresh()
    info = updater.get_targetinfo(tuf_repo.DIRECTOR_KEYS_TARGET)
    assert info is not None
    downloaded = Path(updater.download_target(info)).read_bytes()

    stored = repository.tuf_dir / "targets" / _prefixed_target(repository, tuf_repo.DIRECTOR_KEYS_TARGET)
    assert downloaded == stored.read_bytes()
    assert json.loads(downloaded)[0]["public_key_hex"]  # the director keys document, not an error page


def test_ngclient_with_a_viewer_key_gets_403(tmp_path, served: ServedCloud) -> None:
    updater = _updater(tmp_path, served.config, served.base_url, served.tokens[Role.VIEWER])

    with pytest.raises(DownloadHTTPError) as raised:
        updater.refresh()
    assert raised.value.status_code == 403


def test_ngclient_with_a_revoked_gateway_key_gets_401(tmp_path, config, db, tokens, base_url) -> None:
    tuf_repo.init_repository(config, PASSPHRASE)
    KeyStore(db).revoke(tokens[Role.GATEWAY].split("_")[1])
    updater = _updater(tmp_path, config, base_url, tokens[Role.GATEWAY])

    with pytest.raises(DownloadHTTPError) as raised:
        updater.refresh()
    assert raised.value.status_code == 401


def test_files_are_served_byte_for_byte_to_gateways_and_operators(served: ServedCloud) -> None:
    repository, http, tokens = served.config, served.http, served.tokens
    timestamp = (repository.tuf_dir / "metadata" / "timestamp.json").read_bytes()
    target = _prefixed_target(repository, tuf_repo.DIRECTOR_KEYS_TARGET)

    for role in (Role.GATEWAY, Role.OPERATOR):
        response = http.get("/tuf/metadata/timestamp.json", headers=auth(tokens[role]))
        assert (response.status_code, response.content) == (200, timestamp)
        assert response.headers["cache-control"] == "no-cache"
        response = http.get(f"/tuf/targets/{target}", headers=auth(tokens[role]))
        assert response.status_code == 200
        assert response.content == (repository.tuf_dir / "targets" / target).read_bytes()


def test_missing_files_are_404(served: ServedCloud) -> None:
    gateway = auth(served.tokens[Role.GATEWAY])
    for path in ("/tuf/metadata/99.root.json", "/tuf/targets/models/none/1/model.onnx", "/tuf/targets/director"):
        response = served.http.get(path, headers=gateway)
        assert (response.status_code, response.json()["detail"].startswith("no such TUF file")) == (404, True), path


def _raw_get(base_url: str, raw_path: str, token: str) -> tuple[int, bytes]:
    """Send the path exactly as written: httpx would normalise away the ``..`` we want to send."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", raw_path, headers=auth(token))
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "raw_path",
    [
        "/tuf/targets/../../iotsphere.db",
        "/tuf/targets/%2e%2e/%2e%2e/iotsphere.db",
        "/tuf/targets/..%2f..%2fkeys%2froot.pem",
        "/tuf/targets/director/../../../keys/root.pem",
        "/tuf/metadata/..%2f..%2fiotsphere.db",
        "/tuf/metadata/%2e%2e",
        "/tuf/targets/%2fetc%2fpasswd",
        "/tuf/targets/..%5c..%5ciotsphere.db",
        "/tuf/targets/.secret",
        "/tuf/targets/escape",
    ],
)
def test_path_traversal_is_refused(served: ServedCloud, raw_path: str) -> None:
    status, body = _raw_get(served.base_url, raw_path, served.tokens[Role.GATEWAY])

    assert status == 404, body
    assert b"SQLite" not in body and b"PRIVATE KEY" not in body and b"hidden" not in body
