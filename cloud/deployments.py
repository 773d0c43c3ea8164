"""Per-gateway deployment state: how far each gateway got with the release its latest director document names.

Derived at read time from what the cloud already stores, so it needs no table and no worker and is never
stale: the latest director document per gateway (``director_documents``, one row per gateway) names a release
per model, and the gateway's ``up/events`` (``gateway_events``) say what it did with it. The edge emits:

- ``download`` (with the document's sequence) when the release starts downloading (``downloading``, from the
  latest such event, so a retry after a transient reject is downloading again);
- ``install`` (with the sequence) once the release downloaded, verified and was written; agents older than the
  ``download`` event only send this one, which then marks ``downloading``;
- ``activate`` (with the sequence) when the release starts serving on probation (``probation``);
- ``commit`` (with the sequence that activated it; older agents send none) when it passed probation
  (``committed``);
- ``rollback`` (the same; its version is the one swapped *back to*) when probation failed or the active
  release would not load: the gateway left the named release (``rolled_back``);
- ``challenger`` events (an experiment's second release) say nothing about the active release and are ignored;
- ``reject`` (with the sequence the document claims) when any rule failed: the agent applies a document whole
  or not at all, so a reject refuses every model of it (``rejected``, with the rule and reason).

A document that names the version a gateway already runs makes the agent emit nothing (re-issued documents,
renewals, director key rotation), and commit and rollback name the document that *activated* the release (not
necessarily the latest), so where a model stands comes from the gateway's latest *switch* of it (an activation
up to the document's sequence, or a rollback): the named version activated (probation, committed by a later
commit), rolled back to (committed), or rolled back from right after its activation (rolled back); any other
switch means the gateway has not taken it yet. The download, install and reject of the document itself are
matched by sequence. When several outcomes are known, the
latest wins (a rejected document retried successfully is in probation). A deployment still pending,
downloading or on probation past its deadline after the document was issued is ``overdue``; ``stage`` keeps
how far it got. Event times are the gateway's clock and are compared with each other only; ``issued_at`` and
the deadline are the cloud's.

Which document an event is about is decided by its digest, never by the sequence it reports: anyone who can
publish on a gateway's ``down/desired`` can send a copy of its current document with one signature character
changed, and the gateway's reject of it reports the same sequence as the genuine one. An event counts only if
its ``document_digest`` is one the cloud issued to that gateway (``director_issued``), and then with the
sequence the cloud issued it under; an event naming any other digest moves nothing here and is a security event
(``cloud.security_events``). Events from agents older than the digest (none named) keep the weaker legacy
path: matched by the sequence they report, except rejects for the rules that fail *before* a document is known
to be the cloud's and this gateway's (``director.format``, ``director.signature``, ``director.gateway``), which
are exactly the ones a forgery or a replay from another gateway causes. Every other rule fails only for a
document that verified with a director key and names this gateway, so its sequence is one the cloud signed.
Refusing those agents' events altogether would leave every deployment of a fleet not yet upgraded pending and
then overdue, and halt every rollout; this way an old agent is as forgeable as before only through rules that
say nothing about a release's quality, and a rollout is never halted by them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

import sqlite_utils
from pydantic import BaseModel, ConfigDict
from sqlalchemy import RowMapping

from cloud.config import environment
from cloud.data import director as stored_director
from cloud.data.connections import connection_of
from shared.director import RejectRule, format_time

DEADLINE_ENV = "IOTSPHERE_DEPLOYMENT_DEADLINE_S"
DEFAULT_DEADLINE = timedelta(minutes=30)


class DeploymentState(StrEnum):
    PENDING = "pending"
    DOWNLOADING = "downloading"
    PROBATION = "probation"
    COMMITTED = "committed"
    REJECTED = "rejected"
    ROLLED_BACK = "rolled_back"
    OVERDUE = "overdue"


#: states in which a gateway still owes an answer, so the deadline applies
_IN_FLIGHT = (DeploymentState.PENDING, DeploymentState.DOWNLOADING, DeploymentState.PROBATION)


class Deployment(BaseModel):
    """One gateway's deployment of one model."""

    model_config = ConfigDict(frozen=True)

    gateway_id: str
    model_name: str
    #: the release the gateway's latest director document names
    version: str
    director_sequence: int
    state: DeploymentState
    #: the furthest step reached (differs from ``state`` only when overdue)
    stage: DeploymentState
    issued_at: datetime
    published_at: datetime | None
    downloading_at: datetime | None
    probation_at: datetime | None
    committed_at: datetime | None
    rejected_at: datetime | None
    rolled_back_at: datetime | None
    overdue_at: datetime | None
    #: the rule that failed, for a rejection
    rule: str | None
    #: why: the rejection's or the rollback's detail
    reason: str | None
    #: the last director sequence the gateway reported as accepted (``up/status``)
    gateway_sequence: int | None


def resolve_deadline(seconds: float | None = None) -> timedelta:
    """``seconds`` if given, else ``IOTSPHERE_DEPLOYMENT_DEADLINE_S`` (default 30 minutes); ValueError if invalid."""
    return timedelta(seconds=environment().deployment_deadline_s if seconds is None else seconds)


#: rejects an agent that names no digest may send for a document that is not the cloud's, or not this gateway's
_UNAUTHENTICATED_RULES = (RejectRule.DIRECTOR_FORMAT, RejectRule.DIRECTOR_SIGNATURE, RejectRule.DIRECTOR_GATEWAY)


#: for events at the same instant, the one further along wins
_RANK = {
    DeploymentState.PENDING: 0,
    DeploymentState.DOWNLOADING: 1,
    DeploymentState.PROBATION: 2,
    DeploymentState.COMMITTED: 3,
    DeploymentState.ROLLED_BACK: 4,
    DeploymentState.REJECTED: 4,
}


def _time(value: str | None) -> datetime | None:
    """A stored UTC time (``iso()`` text): ``fromisoformat`` parses it in a fraction of ``strptime``'s time, which
    was most of what deriving a 100,000-gateway fleet's deployments cost."""
    return datetime.fromisoformat(value) if value else None


def _where_the_model_stands(
    row: Mapping[str, Any],
) -> tuple[datetime | None, datetime | None, datetime | None, str | None]:
    """Probation, committed and rolled-back times of the named version, from the gateway's latest switch.

    An activation of the version is probation, committed by a later commit; a rollback *to* it leaves it
    running committed (the agent falls back only to a committed release); a rollback right after its
    activation means it was rolled back. Any other latest switch: the gateway has not taken this version.
    """
    version, switched_at = row["version"], _time(row["switch_at"])
    if row["switch_kind"] == "activate" and row["switch_version"] == version:
        return switched_at, _time(row["committed_at"]), None, None
    if row["switch_kind"] == "rollback" and row["switch_version"] == version:
        return None, switched_at, None, None
    if row["switch_kind"] == "rollback" and row["activated_version"] == version:
        return _time(row["activated_at"]), None, switched_at, row["switch_detail"]
    return None, None, None, None


class _Progress(NamedTuple):
    """How far one deployment got, derived from its row: what ``Deployment`` holds beyond the row itself."""

    stage: DeploymentState
    issued_at: datetime
    #: each step's time, None if not reached
    times: dict[DeploymentState, datetime | None]
    overdue_at: datetime | None
    rollback_reason: str | None

    @property
    def state(self) -> DeploymentState:
        return DeploymentState.OVERDUE if self.overdue_at else self.stage


def _progress(row: Mapping[str, Any], now: datetime, deadline: timedelta) -> _Progress:
    issued_at = datetime.fromisoformat(row["issued_at"])
    probation_at, committed_at, rolled_back_at, rollback_reason = _where_the_model_stands(row)
    times = {
        DeploymentState.DOWNLOADING: _time(row["downloading_at"]),
        DeploymentState.PROBATION: probation_at,
        DeploymentState.COMMITTED: committed_at,
        DeploymentState.REJECTED: _time(row["rejected_at"]),
        DeploymentState.ROLLED_BACK: rolled_back_at,
    }
    reached = [(when, _RANK[state], state) for state, when in times.items() if when is not None]
    stage = max(reached)[2] if reached else DeploymentState.PENDING
    overdue_at = issued_at + deadline if stage in _IN_FLIGHT and now > issued_at + deadline else None
    return _Progress(stage, issued_at, times, overdue_at, rollback_reason)


def _deployment(row: Mapping[str, Any], progress: _Progress) -> Deployment:
    stage, times = progress.stage, progress.times
    reason = {DeploymentState.REJECTED: row["reject_detail"], DeploymentState.ROLLED_BACK: progress.rollback_reason}
    return Deployment(
        gateway_id=row["gateway_id"],
        model_name=row["model_name"],
        version=row["version"],
        director_sequence=row["sequence"],
        state=progress.state,
        stage=stage,
        issued_at=progress.issued_at,
        published_at=_time(row["published_at"]),
        downloading_at=times[DeploymentState.DOWNLOADING],
        probation_at=times[DeploymentState.PROBATION],
        committed_at=times[DeploymentState.COMMITTED],
        rejected_at=times[DeploymentState.REJECTED],
        rolled_back_at=times[DeploymentState.ROLLED_BACK],
        overdue_at=progress.overdue_at,
        rule=row["rule"] if stage is DeploymentState.REJECTED else None,
        reason=reason.get(stage),
        gateway_sequence=row["gateway_sequence"],
    )


def _rows(
    db: sqlite_utils.Database,
    gateway_id: str | None = None,
    model_name: str | None = None,
    gateway_ids: Collection[str] | None = None,
) -> list[RowMapping]:
    unauthenticated = [rule.value for rule in _UNAUTHENTICATED_RULES]
    return stored_director.deployment_rows(connection_of(db), unauthenticated, gateway_id, model_name, gateway_ids)


def list_deployments(
    db: sqlite_utils.Database,
    gateway_id: str | None = None,
    model_name: str | None = None,
    state: DeploymentState | None = None,
    deadline: timedelta | None = None,
    now: datetime | None = None,
    gateway_ids: Collection[str] | None = None,
) -> list[Deployment]:
    """Every (gateway, model) deployment of the latest director documents, by gateway then model (of
    ``gateway_ids`` only, if given: a page of the fleet in one query)."""
    now = now or datetime.now(UTC)
    deadline = deadline or resolve_deadline()
    derived = ((row, _progress(row, now, deadline)) for row in _rows(db, gateway_id, model_name, gateway_ids))
    return [_deployment(row, progress) for row, progress in derived if state is None or progress.state is state]


def count_deployments(
    db: sqlite_utils.Database, deadline: timedelta | None = None, now: datetime | None = None
) -> Counter[tuple[str, DeploymentState]]:
    """How many deployments of each model are in each state (``/metrics``): ``list_deployments``' states without
    building each ``Deployment``, which took two thirds of the time at 100,000 gateways."""
    now = now or datetime.now(UTC)
    deadline = deadline or resolve_deadline()
    return Counter((row["model_name"], _progress(row, now, deadline).state) for row in _rows(db))


#: the columns of :func:`describe`
DESCRIBED = ("GATEWAY", "MODEL", "VERSION", "SEQUENCE", "STATE", "SINCE", "WHY")


def describe(deployment: Deployment) -> tuple[str, ...]:
    """One table row for the CLI (columns ``DESCRIBED``): who, what, where it stands and since when, and why."""
    since = {
        DeploymentState.PENDING: deployment.issued_at,
        DeploymentState.DOWNLOADING: deployment.downloading_at,
        DeploymentState.PROBATION: deployment.probation_at,
        DeploymentState.COMMITTED: deployment.committed_at,
        DeploymentState.REJECTED: deployment.rejected_at,
        DeploymentState.ROLLED_BACK: deployment.rolled_back_at,
        DeploymentState.OVERDUE: deployment.overdue_at,
    }[deployment.state]
    state = deployment.state.value
    if deployment.state is DeploymentState.OVERDUE:
        state += f" (still {deployment.stage.value})"
    why = f"[{deployment.rule}] " if deployment.rule else ""
    why += deployment.reason or ""
    return (
        deployment.gateway_id,
        deployment.model_name,
        deployment.version,
        f"#{deployment.director_sequence}",
        state,
        format_time(since) if since else "?",
        why.strip() or "-",
    )
