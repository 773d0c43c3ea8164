"""Liveness and readiness of this process, from checks its running parts register.

Live: every registered loop has beaten recently (a loop that died or hangs does not come back: restart the
process). Ready: live, and the database answers, its migrations are all applied and every broker connection is up
(a broker outage makes a process unready, never restarts it). Workers register while they run: the ingest worker
its broker connection and its loop, each periodic worker its loop (``cloud.workers``), so a process reports on
exactly what it runs.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from sqlalchemy.exc import DBAPIError

from cloud import storage
from cloud.data.connections import connection_of
from cloud.data.migrations import HEAD
from cloud.data.schema import revision
from cloud.data.urls import shown


@dataclass(frozen=True)
class CheckResult:
    #: ``database``, ``migrations``, ``broker:<client id>``, ``heartbeat:<worker>``
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAIL':4} {self.name}: {self.detail}"

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Registered:
    check: Callable[[], CheckResult]
    #: counts for liveness too (a loop), not only readiness (a connection)
    live: bool


_registered: dict[str, _Registered] = {}
_lock = threading.Lock()


def register(name: str, check: Callable[[], CheckResult], *, live: bool) -> None:
    with _lock:
        _registered[name] = _Registered(check, live)


def unregister(name: str) -> None:
    with _lock:
        _registered.pop(name, None)


def _run_registered(live_only: bool) -> list[CheckResult]:
    with _lock:
        checks = [entry.check for _, entry in sorted(_registered.items()) if entry.live or not live_only]
    return [check() for check in checks]


class Heartbeat:
    """A loop's proof of life: fresh while a pass runs, and for ``max_silence`` seconds after one ended.

    A pass may take as long as its work (a training run, an hour): what the heartbeat catches is a loop that
    stopped passing, not a slow pass.
    """

    def __init__(self, worker: str, max_silence: float) -> None:
        self.name = f"heartbeat:{worker}"
        self.max_silence = max_silence
        self._last = time.monotonic()
        self._busy = False

    def start(self) -> None:
        self._last, self._busy = time.monotonic(), False
        register(self.name, self.check, live=True)

    def stop(self) -> None:
        unregister(self.name)

    def beat(self, busy: bool = False) -> None:
        """A pass begins (``busy``) or ended."""
        self._last, self._busy = time.monotonic(), busy

    def check(self) -> CheckResult:
        age = time.monotonic() - self._last
        if self._busy:
            return CheckResult(self.name, True, "a pass is running")
        detail = f"last pass {age:.0f} s ago (limit {self.max_silence:g} s)"
        return CheckResult(self.name, age <= self.max_silence, detail)


def broker_check(client_id: str, connected: Callable[[], bool]) -> Callable[[], CheckResult]:
    name = f"broker:{client_id}"
    return lambda: CheckResult(name, connected(), "connected" if connected() else "not connected to the broker")


def database_checks(database_url: str) -> list[CheckResult]:
    """The database answers a query, and it is at the newest revision this code knows (Alembic's head)."""
    try:
        db = storage.connect(database_url)
        try:
            current = revision(connection_of(db))
        finally:
            db.close()
    except (sqlite3.Error, DBAPIError) as exc:
        reason = exc.orig if isinstance(exc, DBAPIError) else exc  # the driver's one line, not the statement too
        return [
            CheckResult("database", False, f"{shown(database_url)}: {reason}"),
            CheckResult("migrations", False, "unknown: the database cannot be read"),
        ]
    migrations = (
        CheckResult("migrations", True, f"revision {current}")
        if current == HEAD
        else CheckResult("migrations", False, f"at revision {current or 'none'}, not {HEAD}: open it to migrate")
    )
    return [CheckResult("database", True, "answers"), migrations]


def liveness() -> list[CheckResult]:
    return _run_registered(live_only=True)


def readiness(database_url: str) -> list[CheckResult]:
    return [*database_checks(database_url), *_run_registered(live_only=False)]


def registered_checks() -> list[CheckResult]:
    """Every check this process's running parts registered, for the metrics (``iotsphere_health_check_ok``)."""
    return _run_registered(live_only=False)
