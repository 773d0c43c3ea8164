"""Whether a stage passed, failed or is still waiting, from its gateways' deployment state (``cloud.deployments``).

A gateway *fails* the stage when it rejected the document, rolled the release back, was directed to another
version since (an operator or another rollout took it over), or is still pending, downloading or on probation
past the stage's deadline (overdue: a silent gateway cannot stall a stage). The stage fails as soon as the
failing share exceeds its threshold, passes once every gateway has committed or failed within it, and waits
otherwise. A gateway the director could not direct (``director_failures``: its sequence at the bound, its row
refused) says nothing about the release: it is shown as ``not_directed`` with the reason and left out of the
share (the director publisher keeps retrying it); a stage none of whose gateways could be directed waits until
its deadline and then fails. Deployment ``stage`` (how far a gateway got) is used rather than its ``state``
because the deadline here is the rollout stage's, not the deployment default. Deployments move only on events
about documents the cloud issued to the gateway (matched by digest in ``cloud.deployments``): the reject of a
forged copy of a gateway's document, however it copies the sequence, is a security event
(``cloud.security_events``) and never fails a stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlite_utils

from cloud.deployments import DEFAULT_DEADLINE, Deployment, DeploymentState, list_deployments
from cloud.releases import director


class Verdict(StrEnum):
    WAITING = "waiting"
    PASSED = "passed"
    FAILED = "failed"


#: a gateway now directed to another version than the rollout's
SUPERSEDED = "superseded"
#: a gateway the rollout could not direct (its failure is recorded and retried)
NOT_DIRECTED = "not_directed"
_FAILED_STATES = {DeploymentState.REJECTED.value, DeploymentState.ROLLED_BACK.value, DeploymentState.OVERDUE.value}


@dataclass(frozen=True)
class GatewayStanding:
    gateway_id: str
    #: a deployment state, or ``superseded``
    state: str
    version: str | None
    director_sequence: int | None
    reason: str | None

    @property
    def failed(self) -> bool:
        return self.state in _FAILED_STATES or self.state == SUPERSEDED


@dataclass(frozen=True)
class StageVerdict:
    verdict: Verdict
    gateways: list[GatewayStanding]
    failure_share: float
    max_failure_share: float

    @property
    def judged(self) -> list[GatewayStanding]:
        return _judged(self.gateways)

    @property
    def failed_gateways(self) -> list[GatewayStanding]:
        return [g for g in self.gateways if g.failed]

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for standing in self.gateways:
            counts[standing.state] = counts.get(standing.state, 0) + 1
        states = ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
        return (
            f"{states}; failing share {self.failure_share:.0%} "
            f"(threshold {self.max_failure_share:.0%}) of {len(self.judged)} gateway(s) directed"
        )


def _judged(gateways: list[GatewayStanding]) -> list[GatewayStanding]:
    """The gateways a verdict counts: all but those the director could not direct."""
    return [g for g in gateways if g.state != NOT_DIRECTED]


def _standing(
    deployment: Deployment | None,
    gateway_id: str,
    version: str,
    deadline_at: datetime,
    now: datetime,
    undirected: dict[str, str],
) -> GatewayStanding:
    if gateway_id in undirected and (deployment is None or deployment.version != version):
        sequence = deployment.director_sequence if deployment else None
        previous = deployment.version if deployment else None
        return GatewayStanding(gateway_id, NOT_DIRECTED, previous, sequence, undirected[gateway_id])
    if deployment is None:  # no document at all (e.g. the database was restored): it owes an answer
        state = DeploymentState.OVERDUE if now > deadline_at else DeploymentState.PENDING
        return GatewayStanding(gateway_id, state.value, None, None, "no director document")
    if deployment.version != version:
        reason = f"directed to version {deployment.version} since the rollout directed it"
        return GatewayStanding(gateway_id, SUPERSEDED, deployment.version, deployment.director_sequence, reason)
    state = deployment.stage
    reason = f"[{deployment.rule}] {deployment.reason}" if deployment.rule else deployment.reason
    if state in (DeploymentState.PENDING, DeploymentState.DOWNLOADING, DeploymentState.PROBATION) and now > deadline_at:
        reason = f"still {state.value} at the stage deadline"
        state = DeploymentState.OVERDUE
    return GatewayStanding(gateway_id, state.value, version, deployment.director_sequence, reason)


def judge_stage(
    db: sqlite_utils.Database,
    model_name: str,
    version: str,
    gateway_ids: list[str],
    deadline_at: datetime,
    max_failure_share: float,
    now: datetime,
) -> StageVerdict:
    """The stage's verdict at ``now``."""
    # the stage's gateways only: the rest of the fleet says nothing about the stage (their state unused: the
    # stage's deadline applies)
    found = list_deployments(db, model_name=model_name, deadline=DEFAULT_DEADLINE, now=now, gateway_ids=gateway_ids)
    deployments = {d.gateway_id: d for d in found}
    undirected = {f.gateway_id: f.reason for f in director.failures(db)}
    gateways = [_standing(deployments.get(g), g, version, deadline_at, now, undirected) for g in gateway_ids]
    judged = _judged(gateways)
    share = sum(g.failed for g in judged) / len(judged) if judged else 0.0
    if share > max_failure_share or (not judged and now > deadline_at):
        verdict = Verdict.FAILED
    elif judged and all(g.failed or g.state == DeploymentState.COMMITTED.value for g in judged):
        verdict = Verdict.PASSED
    else:
        verdict = Verdict.WAITING
    return StageVerdict(verdict, gateways, share, max_failure_share)
