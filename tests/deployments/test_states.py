"""Deployment state derived from director documents and gateway events, each path through the states."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from cloud.deployments import (
    DEADLINE_ENV,
    DEFAULT_DEADLINE,
    DeploymentState,
    count_deployments,
    list_deployments,
    resolve_deadline,
)
from shared.messages import EventKind
from tests.deployments.conftest import MODEL, T0, Fleet

GW = "gw-1"
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def _only(fleet: Fleet, now=T0 + MINUTE, deadline=DEFAULT_DEADLINE, **filters):
    (deployment,) = list_deployments(fleet.db, now=now, deadline=deadline, **filters)
    return deployment


def test_a_new_document_is_pending_then_downloading_probation_and_committed_with_each_time(fleet: Fleet):
    sequence = fleet.direct(GW, T0, **{MODEL: "1"})
    pending = _only(fleet)
    assert (pending.state, pending.version, pending.director_sequence) == (DeploymentState.PENDING, "1", sequence)
    assert pending.issued_at == T0 and pending.probation_at is None

    fleet.report(GW, EventKind.INSTALL, T0 + 2 * MINUTE, "1", sequence)
    assert _only(fleet).state is DeploymentState.DOWNLOADING
    fleet.report(GW, EventKind.ACTIVATE, T0 + 3 * MINUTE, "1", sequence, detail="first version")
    assert _only(fleet).state is DeploymentState.PROBATION
    fleet.report(GW, EventKind.COMMIT, T0 + 10 * MINUTE, "1", detail="50 predictions within bounds")

    committed = _only(fleet, now=T0 + 10 * HOUR)  # long past the deadline: a committed deployment is never overdue
    assert committed.state is committed.stage is DeploymentState.COMMITTED
    assert (committed.downloading_at, committed.probation_at, committed.committed_at) == (
        T0 + 2 * MINUTE,
        T0 + 3 * MINUTE,
        T0 + 10 * MINUTE,
    )
    assert committed.overdue_at is None and committed.reason is None


def test_downloading_starts_with_the_download_event_and_a_retry_after_a_reject_downloads_again(fleet: Fleet):
    sequence = fleet.direct(GW, T0, **{MODEL: "1"})
    fleet.report(GW, EventKind.DOWNLOAD, T0 + MINUTE, "1", sequence)
    fleet.report(GW, EventKind.CHALLENGER, T0 + MINUTE, "2", sequence, detail="downloading")
    downloading = _only(fleet)
    assert (downloading.state, downloading.downloading_at) == (DeploymentState.DOWNLOADING, T0 + MINUTE)
    fleet.report(GW, EventKind.INSTALL, T0 + 2 * MINUTE, "1", sequence)
    assert _only(fleet).downloading_at == T0 + MINUTE  # the install does not restart the download

    fleet.report(GW, EventKind.REJECT, T0 + 3 * MINUTE, None, sequence, model_name=None, rule="tuf.download")
    assert _only(fleet).state is DeploymentState.REJECTED
    fleet.report(GW, EventKind.DOWNLOAD, T0 + 4 * MINUTE, "1", sequence)  # the agent retried on its own
    assert (_only(fleet).state, _only(fleet).downloading_at) == (DeploymentState.DOWNLOADING, T0 + 4 * MINUTE)

    fleet.report(GW, EventKind.ACTIVATE, T0 + 5 * MINUTE, "1", sequence)
    fleet.report(GW, EventKind.COMMIT, T0 + 6 * MINUTE, "1", sequence)  # commits name the activating document
    assert (_only(fleet).state, _only(fleet).committed_at) == (DeploymentState.COMMITTED, T0 + 6 * MINUTE)


def test_a_gateway_that_misses_the_deadline_is_overdue_and_keeps_its_stage(fleet: Fleet):
    sequence = fleet.direct(GW, T0, **{MODEL: "1"})
    deadline = timedelta(minutes=30)

    assert _only(fleet, now=T0 + 29 * MINUTE, deadline=deadline).state is DeploymentState.PENDING
    silent = _only(fleet, now=T0 + 31 * MINUTE, deadline=deadline)
    assert (silent.state, silent.stage, silent.overdue_at) == (
        DeploymentState.OVERDUE,
        DeploymentState.PENDING,
        T0 + deadline,
    )

    fleet.report(GW, EventKind.ACTIVATE, T0 + 5 * MINUTE, "1", sequence)
    stuck = _only(fleet, now=T0 + 31 * MINUTE, deadline=deadline)
    assert (stuck.state, stuck.stage) == (DeploymentState.OVERDUE, DeploymentState.PROBATION)
    assert list_deployments(fleet.db, state=DeploymentState.OVERDUE, deadline=deadline, now=T0 + 31 * MINUTE)
    assert not list_deployments(fleet.db, state=DeploymentState.OVERDUE, deadline=deadline, now=T0 + 29 * MINUTE)


def test_a_rejected_document_names_its_rule_and_a_later_retry_that_activates_wins(fleet: Fleet):
    sequence = fleet.direct(GW, T0, **{MODEL: "1"})
    fleet.report(GW, EventKind.REJECT, T0 + MINUTE, None, sequence, model_name=None, rule="tuf.refresh", detail="503")

    rejected = _only(fleet, now=T0 + 10 * HOUR)  # an answer, so not overdue
    assert (rejected.state, rejected.rule, rejected.reason) == (DeploymentState.REJECTED, "tuf.refresh", "503")
    assert rejected.rejected_at == T0 + MINUTE

    fleet.report(GW, EventKind.ACTIVATE, T0 + 3 * MINUTE, "1", sequence)  # the agent retried on its own
    retried = _only(fleet)
    assert (retried.state, retried.rule, retried.reason) == (DeploymentState.PROBATION, None, None)


def test_a_reject_of_the_document_refuses_every_model_it_names(fleet: Fleet):
    sequence = fleet.direct(GW, T0, **{MODEL: "1", "anomaly": "4"})
    fleet.report(GW, EventKind.REJECT, T0 + MINUTE, "4", sequence, model_name="anomaly", rule="golden_vectors")

    deployments = list_deployments(fleet.db, now=T0 + MINUTE)
    assert [(d.model_name, d.version, d.state, d.rule) for d in deployments] == [
        ("anomaly", "4", DeploymentState.REJECTED, "golden_vectors"),
        (MODEL, "1", DeploymentState.REJECTED, "golden_vectors"),
    ]


def test_a_failed_probation_is_rolled_back_with_its_reason(fleet: Fleet):
    first = fleet.direct(GW, T0, **{MODEL: "1"})
    fleet.applied(GW, first, "1", T0 + MINUTE, commit_after=HOUR)
    second = fleet.direct(GW, T0 + 2 * HOUR, **{MODEL: "2"})
    fleet.report(GW, EventKind.INSTALL, T0 + 2 * HOUR + MINUTE, "2", second)
    fleet.report(GW, EventKind.ACTIVATE, T0 + 2 * HOUR + MINUTE, "2", second, detail="previous 1")
    fleet.report(GW, EventKind.ROLLBACK, T0 + 3 * HOUR, "1", detail="from 2: probation failed: output 'p' is NaN")

    rolled_back = _only(fleet, now=T0 + 10 * HOUR)
    assert (rolled_back.version, rolled_back.state) == ("2", DeploymentState.ROLLED_BACK)
    assert (rolled_back.probation_at, rolled_back.rolled_back_at) == (T0 + 2 * HOUR + MINUTE, T0 + 3 * HOUR)
    assert rolled_back.reason == "from 2: probation failed: output 'p' is NaN"


def test_a_reissued_document_for_the_running_version_stays_committed(fleet: Fleet):
    first = fleet.direct(GW, T0, **{MODEL: "1"})
    fleet.applied(GW, first, "1", T0 + MINUTE, commit_after=HOUR)
    renewed = fleet.direct(GW, T0 + 5 * HOUR)  # renewal or key rotation: same models, new sequence, no events

    deployment = _only(fleet, now=T0 + 10 * HOUR)
    assert (deployment.director_sequence, deployment.state) == (renewed, DeploymentState.COMMITTED)
    assert deployment.committed_at == T0 + MINUTE + HOUR


def test_an_operator_rollback_is_pending_until_the_gateway_activates_the_older_release(fleet: Fleet):
    first = fleet.direct(GW, T0, **{MODEL: "1"})
    fleet.applied(GW, first, "1", T0 + MINUTE, commit_after=HOUR)
    second = fleet.direct(GW, T0 + 2 * HOUR, **{MODEL: "2"})
    fleet.applied(GW, second, "2", T0 + 2 * HOUR + MINUTE, commit_after=HOUR)
    rollback = fleet.direct(GW, T0 + 4 * HOUR, **{MODEL: "1"})

    # version 1 was once committed, but the gateway has run 2 since: the older activation does not count
    assert _only(fleet, now=T0 + 4 * HOUR + MINUTE).state is DeploymentState.PENDING

    fleet.report(GW, EventKind.ACTIVATE, T0 + 4 * HOUR + MINUTE, "1", rollback, detail="previous 2")
    fleet.report(GW, EventKind.COMMIT, T0 + 5 * HOUR, "1")
    back = _only(fleet, now=T0 + 6 * HOUR)
    assert (back.version, back.director_sequence, back.state) == ("1", rollback, DeploymentState.COMMITTED)
    assert (back.probation_at, back.committed_at) == (T0 + 4 * HOUR + MINUTE, T0 + 5 * HOUR)


def test_directing_a_gateway_to_the_release_it_fell_back_to_is_committed(fleet: Fleet):
    first = fleet.direct(GW, T0, **{MODEL: "1"})
    fleet.applied(GW, first, "1", T0 + MINUTE, commit_after=HOUR)
    second = fleet.direct(GW, T0 + 2 * HOUR, **{MODEL: "2"})
    fleet.report(GW, EventKind.ACTIVATE, T0 + 2 * HOUR + MINUTE, "2", second)
    fleet.report(GW, EventKind.ROLLBACK, T0 + 3 * HOUR, "1", detail="from 2: probation failed")
    fleet.direct(GW, T0 + 4 * HOUR, **{MODEL: "1"})  # the agent already runs 1: it reports nothing

    deployment = _only(fleet, now=T0 + 10 * HOUR)
    assert (deployment.version, deployment.state, deployment.committed_at) == (
        "1",
        DeploymentState.COMMITTED,
        T0 + 3 * HOUR,
    )


def test_filters_by_gateway_model_and_state(fleet: Fleet):
    a = fleet.direct("gw-a", T0, **{MODEL: "1", "anomaly": "2"})
    fleet.direct("gw-b", T0, **{MODEL: "1"})
    fleet.applied("gw-a", a, "1", T0 + MINUTE, commit_after=MINUTE)

    now = T0 + 2 * MINUTE
    assert [(d.gateway_id, d.model_name) for d in list_deployments(fleet.db, now=now)] == [
        ("gw-a", "anomaly"),
        ("gw-a", MODEL),
        ("gw-b", MODEL),
    ]
    assert [d.model_name for d in list_deployments(fleet.db, "gw-a", now=now)] == ["anomaly", MODEL]
    assert [d.gateway_id for d in list_deployments(fleet.db, model_name=MODEL, now=now)] == ["gw-a", "gw-b"]
    committed = list_deployments(fleet.db, state=DeploymentState.COMMITTED, now=now)
    assert [(d.gateway_id, d.model_name) for d in committed] == [("gw-a", MODEL)]
    assert list_deployments(fleet.db, "gw-unknown", now=now) == []


def test_counts_by_model_and_state_are_the_listed_states(fleet: Fleet):
    a = fleet.direct("gw-a", T0, **{MODEL: "1", "anomaly": "2"})
    fleet.applied("gw-a", a, "1", T0 + MINUTE, commit_after=MINUTE)
    b = fleet.direct("gw-b", T0, **{MODEL: "1"})
    fleet.report("gw-b", EventKind.INSTALL, T0 + MINUTE, "1", b)
    fleet.direct("gw-c", T0 + HOUR, **{MODEL: "1"})

    now = T0 + HOUR + MINUTE  # gw-a's anomaly and gw-b still in flight past the deadline; gw-c pending
    counted = count_deployments(fleet.db, deadline=DEFAULT_DEADLINE, now=now)
    assert counted == {
        (MODEL, DeploymentState.COMMITTED): 1,
        (MODEL, DeploymentState.OVERDUE): 1,
        (MODEL, DeploymentState.PENDING): 1,
        ("anomaly", DeploymentState.OVERDUE): 1,
    }
    listed = list_deployments(fleet.db, deadline=DEFAULT_DEADLINE, now=now)
    assert counted == Counter((d.model_name, d.state) for d in listed)


def test_deadline_comes_from_the_environment_and_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(DEADLINE_ENV, raising=False)
    assert resolve_deadline() == DEFAULT_DEADLINE
    assert resolve_deadline(5) == timedelta(seconds=5)
    monkeypatch.setenv(DEADLINE_ENV, "90")
    assert resolve_deadline() == timedelta(seconds=90)
    for bad in ("soon", "0", "-5"):
        monkeypatch.setenv(DEADLINE_ENV, bad)
        with pytest.raises(ValueError, match=DEADLINE_ENV):
            resolve_deadline()
