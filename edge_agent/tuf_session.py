"""python-tuf's ngclient against the cloud's TUF routes, authenticated with the gateway's API key.

TUF does the verifying (signature thresholds, rollback, freeze, mix-and-match, endless data);
this module only supplies the transport ngclient asks for — a ``FetcherInterface`` that sends
``Authorization: Bearer <key>`` — and turns ngclient's errors into the update rules they break.
ngclient refreshes once per ``Updater``, so each update attempt opens a new ``TufSession``.

Only ``edge_agent.tuf_client`` imports this module, in the update child (``edge_agent.update_fetch``): tuf,
securesystemslib's key code and urllib3 cost ~4 MB, which the long-lived agent never carries.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import urllib3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import TargetFile
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from edge_agent.fault_points import fault_point
from edge_agent.version import AGENT_VERSION
from shared.director import DIRECTOR_KEYS_TARGET, DirectorRejected, RejectRule, parse_director_keys


class BearerFetcher(FetcherInterface):
    """Downloads over urllib3 with the gateway's API key on every request."""

    def __init__(self, api_key: str | None, timeout: float = 30.0, chunk_size: int = 256 * 1024):
        headers = {"User-Agent": f"iotsphere-edge/{AGENT_VERSION}"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._pool = urllib3.PoolManager(headers=headers, retries=False)
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._chunk_size = chunk_size

    def _fetch(self, url: str) -> Iterator[bytes]:
        try:
            response = self._pool.request("GET", url, preload_content=False, timeout=self._timeout)
        except urllib3.exceptions.TimeoutError as exc:
            raise tuf_errors.SlowRetrievalError from exc
        if response.status >= 400:
            response.drain_conn()  # leave the pooled connection clean for the next request
            response.release_conn()
            raise tuf_errors.DownloadHTTPError(f"HTTP {response.status} for {url}", response.status)
        return self._chunks(response)

    def _chunks(self, response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        try:
            yield from response.stream(self._chunk_size)
        except urllib3.exceptions.TimeoutError as exc:
            raise tuf_errors.SlowRetrievalError from exc
        finally:
            response.release_conn()


def open_session(
    metadata_dir: Path, metadata_url: str, targets_url: str, downloads_dir: Path, fetcher: BearerFetcher
) -> TufSession:
    """Refresh the trusted metadata from the cached ``root.json`` on, or raise ``tuf.refresh``."""
    try:
        updater = Updater(
            metadata_dir=str(metadata_dir),
            metadata_base_url=metadata_url,
            target_base_url=targets_url,
            fetcher=fetcher,
            bootstrap=None,  # the cached root.json, itself provisioned or reached by verified rotation
        )
        updater.refresh()
    except (OSError, tuf_errors.RepositoryError, tuf_errors.DownloadError) as exc:
        raise DirectorRejected(RejectRule.TUF_REFRESH, _explain(exc)) from exc
    return TufSession(updater, downloads_dir)


class TufSession:
    def __init__(self, updater: Updater, downloads_dir: Path):
        self._updater = updater
        self._downloads_dir = downloads_dir

    def target_info(self, path: str) -> TargetFile | None:
        try:
            return self._updater.get_targetinfo(path)
        except (OSError, tuf_errors.RepositoryError, tuf_errors.DownloadError) as exc:
            raise DirectorRejected(RejectRule.TUF_REFRESH, _explain(exc)) from exc

    def download(self, target: TargetFile) -> bytes:
        """The target's bytes, verified by ngclient against TUF's length and hashes, or ``tuf.download``."""
        with tempfile.TemporaryDirectory(dir=self._downloads_dir) as folder:
            try:
                path = self._updater.download_target(target, filepath=str(Path(folder) / "target"))
                fault_point("download")
                return Path(path).read_bytes()
            except (OSError, tuf_errors.RepositoryError, tuf_errors.DownloadError) as exc:
                raise DirectorRejected(RejectRule.DOWNLOAD, f"{target.path}: {_explain(exc)}") from exc

    def director_keys(self) -> tuple[bytes, dict[str, Ed25519PublicKey]]:
        """The director public keys published as a TUF target: raw bytes (for caching) and keys by id."""
        target = self.target_info(DIRECTOR_KEYS_TARGET)
        if target is None:
            raise DirectorRejected(RejectRule.TUF_REFRESH, f"the repository has no {DIRECTOR_KEYS_TARGET} target")
        data = self.download(target)
        try:
            return data, parse_director_keys(data)
        except (ValueError, TypeError, KeyError) as exc:
            raise DirectorRejected(RejectRule.DIRECTOR_SIGNATURE, f"unusable director keys: {exc}") from exc


def _explain(exc: BaseException) -> str:
    """The error and what caused it: ngclient wraps transport errors in a bare ``DownloadError``."""
    text = f"{type(exc).__name__}: {exc}"
    if exc.__cause__ is not None:
        text += f" ({type(exc.__cause__).__name__}: {exc.__cause__})"
    return text
