"""The background workers of ``iotsphere cloud serve`` share one shape: a thread, its own database connection, a
step every ``interval`` seconds until stopped, and a step that fails is logged while the loop goes on.

A periodic job that must run in one process at a time, however many run it, names its ``leader_lock``
(``cloud.data.leader``): a pass runs only while this process holds that lock, and a process that does not hold it
tries to take it every ``LEADER_RETRY_SECONDS``, so it takes over within that time of the leader's death."""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod

import sqlite_utils

from cloud.config import CloudConfig
from cloud.data.leader import LeaderLock
from cloud.observability.health import Heartbeat
from cloud.observability.metrics import LEADER
from cloud.storage import open_database

log = logging.getLogger(__name__)

#: how long after its pass was due a worker counts as hung (``cloud.observability.health``)
HEARTBEAT_GRACE_SECONDS = 60.0
#: how often a process that does not lead a job tries to take its leader lock
LEADER_RETRY_SECONDS = 5.0


class PeriodicWorker(ABC):
    #: the thread's name, also used in log lines
    name = "worker"
    #: the job's leader lock when one process at a time may run it; None: every process runs its passes
    leader_lock: str | None = None

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
        lock = LeaderLock(self.config.database_url, self.leader_lock) if self.leader_lock else None
        leading: bool | None = None  # not known before the first try
        try:
            while not self._stop.is_set():
                self._heartbeat.beat(busy=True)
                if lock is not None:
                    leading = self._lead(lock, leading)
                    if not leading:
                        self._heartbeat.beat()
                        self._stop.wait(min(self.interval, LEADER_RETRY_SECONDS))
                        continue
                try:
                    busy = self.step(db)
                except Exception:  # e.g. the database briefly unavailable: log, wait, try again
                    log.exception("%s: a pass failed", self.name)
                    busy = False
                self._heartbeat.beat()
                if not busy:
                    self._stop.wait(self.interval)
        finally:
            if lock is not None:
                lock.release()
                LEADER.labels(self.leader_lock).set(0)
            db.close()

    def _lead(self, lock: LeaderLock, leading: bool | None) -> bool:
        """Whether this process leads the job now; says so when that changes (log line and ``LEADER`` gauge)."""
        try:
            now = lock.acquire()
        except Exception:  # the database unreachable: not leading; try again at the next retry
            log.exception("%s: could not take the leader lock %r", self.name, self.leader_lock)
            now = False
        if now != leading:
            LEADER.labels(self.leader_lock).set(int(now))
            state = "leading" if now else "following (another process leads)"
            log.info("%s: %s %r, pid %d", self.name, state, self.leader_lock, os.getpid())
        return now
