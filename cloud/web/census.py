"""The fleet's deployment states, counted off the request path: which gateways have a deployment in each state.

A deployment's state is derived when it is read (``cloud.deployments``: the latest document and the events about
it, with the deadline applied at that moment), which costs about 0.1 ms a gateway: seconds at 100,000 gateways,
too slow for a page. So the Fleet page reads a census taken in a background thread, at most ``MAX_AGE_S`` old:
a request that finds it older (or none) starts the next one and answers with what it has; only the filter by
deployment state waits for the first census of the process. The census shows when it was taken, and each listed
gateway's deployments are derived live as before.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cloud import storage
from cloud.deployments import DeploymentState, list_deployments

log = logging.getLogger(__name__)

#: how old a census may be before a page asks for the next one (the counts are polled every 10 s)
MAX_AGE_S = 30.0
#: and at least this many times as old as it took to take: a census that takes a minute (PostgreSQL at 100,000
#: gateways) is taken again after ten, so counting keeps at most a tenth of a database connection busy
AGE_PER_SECOND_TAKEN = 10.0
#: how long the filter by deployment state waits for a process's first census
FIRST_WAIT_S = 120.0
#: the states in the order the page lists them: what needs an operator first
STATES = tuple(DeploymentState)[::-1]


@dataclass(frozen=True)
class Census:
    """Which gateways had a deployment in each state, when counted (a gateway with two models may be in two)."""

    taken_at: datetime
    seconds: float
    #: state → gateway ids with a deployment in it, sorted
    gateways: dict[str, list[str]] = field(default_factory=dict)

    def count(self, state: str) -> int:
        return len(self.gateways.get(state, ()))

    def after(self, state: str, after: str | None, prefix: str = "") -> list[str]:
        """The gateway ids in ``state`` after ``after``, starting with ``prefix``, in id order."""
        ids = self.gateways.get(state, [])
        start = max(bisect.bisect_right(ids, after) if after is not None else 0, bisect.bisect_left(ids, prefix))
        return [gateway_id for gateway_id in ids[start:] if gateway_id.startswith(prefix)] if prefix else ids[start:]


def take(database_url: str, deadline: timedelta) -> Census:
    """Derive every deployment of the fleet now (one statement, ``cloud.deployments.list_deployments``)."""
    started, db = datetime.now(UTC), storage.connect(database_url)
    try:
        deployments = list_deployments(db, deadline=deadline, now=started)
    finally:
        db.close()
    found: dict[str, set[str]] = {state.value: set() for state in STATES}
    for deployment in deployments:
        found[deployment.state.value].add(deployment.gateway_id)
    seconds = (datetime.now(UTC) - started).total_seconds()
    return Census(started, seconds, {state: sorted(ids) for state, ids in found.items()})


class CensusTaker:
    """One process's latest census and the thread taking the next; one census at a time."""

    def __init__(self, take_census: Callable[[], Census], max_age_s: float = MAX_AGE_S) -> None:
        self._take = take_census
        self._max_age = timedelta(seconds=max_age_s)
        self._latest: Census | None = None
        self._running = False
        self._lock = threading.Condition()

    def latest(self) -> Census | None:
        """The latest census (None before the first); starts the next one if it is older than ``max_age_s`` and
        than ``AGE_PER_SECOND_TAKEN`` times what it took."""
        with self._lock:
            latest = self._latest
            old = latest is None or datetime.now(UTC) - latest.taken_at > max(
                self._max_age, timedelta(seconds=latest.seconds * AGE_PER_SECOND_TAKEN)
            )
            if old and not self._running:
                self._running = True
                threading.Thread(target=self._run, name="deployment-census", daemon=True).start()
            return self._latest

    def first(self, timeout_s: float = FIRST_WAIT_S) -> Census | None:
        """The latest census, waiting up to ``timeout_s`` for the first one if none was taken yet."""
        census = self.latest()
        with self._lock:
            self._lock.wait_for(lambda: self._latest is not None or not self._running, timeout_s)
            return self._latest or census

    def _run(self) -> None:
        census = None
        try:
            census = self._take()
        except Exception:  # a failed census leaves the last one; the next request that finds it old tries again
            log.exception("the deployment census failed")
        with self._lock:
            self._latest = census or self._latest
            self._running = False
            self._lock.notify_all()
