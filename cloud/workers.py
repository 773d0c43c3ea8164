"""The background workers of ``iotsphere cloud serve`` share one shape: a thread, its own database connection, a
step every ``interval`` seconds until stopped, and a step that fails is logged while the loop goes on."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod

import sqlite_utils

from cloud.config import CloudConfig
from cloud.observability.health import Heartbeat
from cloud.storage import open_database

log = logging.getLogger(__name__)

#: how long after its pass was due a worker counts as hung (``cloud.observability.health``)
HEARTBEAT_GRACE_SECONDS = 60.0


class PeriodicWorker(ABC):
    #: the thread's name, also used in log lines
    name = "worker"

    def __init__(self, config: CloudConfig, interval: float) -> None:
        self.config = config
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat = Heartbeat(self.name, interval + HEARTBEAT_GRACE_SECONDS)

    def ready(self) -> bool:
        """Checks before the thread starts: raise to refuse to start (e.g. a wrong passphrase), False to stay idle."""
        return True

    @abstractmethod
    def step(self, db: sqlite_utils.Database) -> bool:
        """One pass; True when there may be more to do at once (the next pass starts without waiting)."""

    def start(self) -> None:
        if not self.ready():
            return
        self._stop.clear()
        self._heartbeat.start()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the pass in progress, waiting at most ``timeout`` seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._heartbeat.stop()

    def _run(self) -> None:
        db = open_database(self.config.database_url)
        try:
            while not self._stop.is_set():
                self._heartbeat.beat(busy=True)
                try:
                    busy = self.step(db)
                except Exception:  # e.g. the database briefly unavailable: log, wait, try again
                    log.exception("%s: a pass failed", self.name)
                    busy = False
                self._heartbeat.beat()
                if not busy:
                    self._stop.wait(self.interval)
        finally:
            db.close()
