"""Where the gateway keeps TUF metadata and how it reaches the cloud's repository.

The TUF machinery itself (python-tuf's ngclient over urllib3) is in ``edge_agent.tuf_session``,
imported only by the update child (``edge_agent.update_fetch``): the agent never loads it. Each attempt
opens a new session, because ngclient refreshes once per ``Updater``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.config import provisioned
from shared.atomic_files import atomic_write
from shared.director import DirectorRejected, RejectRule

if TYPE_CHECKING:
    from edge_agent.tuf_session import BearerFetcher, TufSession


class TufClient:
    """The gateway's TUF metadata folder, provisioned with a trusted root, and the cloud's TUF routes."""

    def __init__(self, cloud_url: str, tuf_dir: Path, api_key: str | None, trusted_root: bytes | None = None):
        base = cloud_url.rstrip("/")
        self.cloud_url = cloud_url
        self.tuf_dir = tuf_dir
        self.metadata_url = f"{base}/tuf/metadata/"
        self.targets_url = f"{base}/tuf/targets/"
        self.metadata_dir = tuf_dir / "metadata"
        self.downloads_dir = tuf_dir / "downloads"
        self.api_key = api_key
        self._fetcher: BearerFetcher | None = None
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        self.downloads_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.downloads_dir.iterdir():  # temporary downloads of an attempt a crash cut short
            shutil.rmtree(leftover, ignore_errors=True)
        if trusted_root is not None and not self.has_trusted_root():
            # provisioning: the trust anchor; from then on ngclient keeps root.json current through rotations
            atomic_write(self.metadata_dir / "root.json", trusted_root)

    def has_trusted_root(self) -> bool:
        return provisioned(self.tuf_dir)

    def session(self) -> TufSession:
        """A freshly refreshed view of the repository, or ``tuf.refresh``."""
        if not self.has_trusted_root():
            raise DirectorRejected(RejectRule.TUF_REFRESH, "no trusted TUF root: provision one with --trusted-root")
        from edge_agent import tuf_session  # tuf and urllib3 load only once an update is applied

        if self._fetcher is None:  # one connection pool for every session
            self._fetcher = tuf_session.BearerFetcher(self.api_key)
        return tuf_session.open_session(
            self.metadata_dir, self.metadata_url, self.targets_url, self.downloads_dir, self._fetcher
        )
