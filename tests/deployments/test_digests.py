"""Events count for a deployment only when they name, by digest, a document the cloud issued to that gateway.

A forged copy of a gateway's current document (same sequence, one signature character changed) is rejected by the
gateway; its reject names the forgery's digest, moves no deployment and is kept as a security event instead.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from click.testing import CliRunner

from cloud import security_events
from cloud.deployments import DeploymentState, list_deployments
from cloud.releases import director
from cloud.security_events import Finding
from iotsphere.cli import main
from shared.director import RejectRule, document_digest
from shared.messages import EventKind
from tests.deployments.conftest import MODEL, T0, Fleet

GW, OTHER = "gw-1", "gw-2"
MINUTE = timedelta(minutes=1)


def _only(fleet: Fleet, gateway_id: str = GW):
    (deployment,) = list_deployments(fleet.db, gateway_id=gateway_id, now=T0 + 10 * MINUTE)
    return deployment


def _forged_copy(fleet: Fleet, gateway_id: str) -> str:
    """The digest of the gateway's current document with one signature character changed."""
    genuine = director.latest_document(fleet.db, gateway_id).to_json()
    at = genuine.index(b'"sig": "') + len(b'"sig": "')
    forged = genuine[:at] + (b"0" if genuine[at : at + 1] != b"0" else b"1") + genuine[at + 1 :]
    return document_digest(forged)


def _committed(fleet: Fleet) -> int:
    """Version 1 directed to GW and committed, as a current agent reports it (every event names the document)."""
    sequence = fleet.direct(GW, T0, **{MODEL: "1"})
    digest = fleet.digest(GW)
    fleet.report(GW, EventKind.DOWNLOAD, T0 + MINUTE, "1", sequence, digest=digest)
    fleet.report(GW, EventKind.ACTIVATE, T0 + 2 * MINUTE, "1", sequence, digest=digest)
    fleet.report(GW, EventKind.COMMIT, T0 + 3 * MINUTE, "1", sequence, digest=digest)
    assert _only(fleet).state is DeploymentState.COMMITTED
    return sequence


def test_a_rejected_forged_copy_leaves_the_deployment_committed_and_is_a_security_event(fleet: Fleet, caplog):
    sequence = _committed(fleet)
    director.mark_published(fleet.db, GW, sequence)
    forged = _forged_copy(fleet, GW)
    detail = "0 valid signature(s) from trusted director keys, 1 required"
    fleet.report(GW, EventKind.REJECT, T0 + 4 * MINUTE, None, sequence, None, "director.signature", detail, forged)
    fleet.report(GW, EventKind.REJECT, T0 + 5 * MINUTE, None, sequence, None, "director.signature", detail, forged)

    assert _only(fleet).state is DeploymentState.COMMITTED
    (event,) = security_events.list_events(fleet.db)
    assert (event.gateway_id, event.document_digest, event.finding, event.issued_to) == (
        GW,
        forged,
        Finding.FORGED,
        None,
    )
    assert (event.kind, event.rule, event.director_sequence, event.sightings) == (
        "reject",
        "director.signature",
        sequence,
        2,
    )
    assert (event.first_seen_at, event.last_seen_at) == (T0 + 4 * MINUTE, T0 + 5 * MINUTE)
    (count,) = security_events.counts(fleet.db)
    assert (count.gateway_id, count.documents, count.sightings) == (GW, 1, 2)

    with caplog.at_level(logging.WARNING, logger="cloud.security_events"):
        (alerted,) = security_events.raise_alerts(fleet.db)
        assert security_events.raise_alerts(fleet.db) == [], "each document is alerted once"
    assert alerted.document_digest == forged
    assert director.unpublished_gateways(fleet.db) == [GW], "its own document is sent again in the forgery's place"
    (line,) = [r.getMessage() for r in caplog.records if r.name == "cloud.security_events"]
    assert line.startswith(f"forged director document seen on {GW}: reject [director.signature]")


def test_the_same_reject_naming_the_cloud_s_own_document_is_a_rejection(fleet: Fleet):
    sequence = _committed(fleet)
    later = fleet.direct(GW, T0 + 4 * MINUTE, **{MODEL: "2"})
    fleet.report(GW, EventKind.REJECT, T0 + 5 * MINUTE, None, later, None, "director.signature", "", fleet.digest(GW))
    assert (_only(fleet).state, _only(fleet).rule) == (DeploymentState.REJECTED, "director.signature")
    assert later > sequence and security_events.list_events(fleet.db) == []


def test_a_digest_decides_the_sequence_whatever_the_event_claims(fleet: Fleet):
    first = fleet.direct(GW, T0, **{MODEL: "1"})
    first_digest = fleet.digest(GW)
    second = fleet.direct(GW, T0 + MINUTE, **{MODEL: "2"})
    # an install of the first document claiming the second's sequence is the first's: version 2 is not downloading
    fleet.report(GW, EventKind.INSTALL, T0 + 2 * MINUTE, "1", second, digest=first_digest)
    assert _only(fleet).state is DeploymentState.PENDING
    fleet.report(GW, EventKind.INSTALL, T0 + 3 * MINUTE, "2", first, digest=fleet.digest(GW))
    assert (_only(fleet).state, _only(fleet).director_sequence) == (DeploymentState.DOWNLOADING, second)


def test_another_gateway_s_document_replayed_is_foreign_and_moves_nothing(fleet: Fleet):
    sequence = _committed(fleet)
    fleet.direct(OTHER, T0, **{MODEL: "1"})
    theirs = fleet.digest(OTHER)
    assert director.latest_document(fleet.db, OTHER).signed.sequence == sequence, "the same sequence, even"
    fleet.report(GW, EventKind.REJECT, T0 + 4 * MINUTE, None, sequence, None, "director.gateway", "", theirs)

    assert _only(fleet).state is DeploymentState.COMMITTED
    (event,) = security_events.list_events(fleet.db, gateway_id=GW)
    assert (event.finding, event.issued_to, event.rule) == (Finding.FOREIGN, OTHER, RejectRule.DIRECTOR_GATEWAY.value)


@pytest.mark.parametrize(
    ("rule", "moves"),
    [("director.signature", False), ("director.format", False), ("director.gateway", False), ("release.golden", True)],
)
def test_agents_without_digests_keep_sequence_matching_except_for_unauthenticated_rejects(
    fleet: Fleet, rule: str, moves: bool
):
    sequence = _committed(fleet)
    fleet.report(GW, EventKind.REJECT, T0 + 4 * MINUTE, None, sequence, None, rule, "an older agent")
    expected = DeploymentState.REJECTED if moves else DeploymentState.COMMITTED
    assert _only(fleet).state is expected
    assert security_events.list_events(fleet.db) == [], "without a digest nothing can be told forged"


def test_a_commit_names_the_older_document_that_activated_the_release(fleet: Fleet):
    sequence = fleet.direct(GW, T0, **{MODEL: "1"})
    activating = fleet.digest(GW)
    fleet.report(GW, EventKind.ACTIVATE, T0 + MINUTE, "1", sequence, digest=activating)
    renewal = fleet.direct(GW, T0 + 2 * MINUTE)  # same desired state, fresh sequence: the agent emits nothing
    fleet.report(GW, EventKind.COMMIT, T0 + 3 * MINUTE, "1", sequence, digest=activating)
    assert (_only(fleet).state, _only(fleet).director_sequence) == (DeploymentState.COMMITTED, renewal)
    assert security_events.list_events(fleet.db) == []


def test_the_cli_lists_and_counts_them(fleet: Fleet):
    sequence = _committed(fleet)
    forged = _forged_copy(fleet, GW)
    fleet.report(GW, EventKind.REJECT, T0 + 4 * MINUTE, None, sequence, None, "director.signature", "", forged)
    data_dir = str(fleet.config.data_dir)

    listed = CliRunner().invoke(main, ["security", "events", "--gateway", GW, "--data-dir", data_dir])
    assert listed.exit_code == 0, listed.output
    assert (
        f"forged director document seen on {GW}: reject [director.signature] of document {forged[:16]}" in listed.output
    )
    counted = CliRunner().invoke(main, ["security", "counts", "--json", "--data-dir", data_dir])
    assert counted.exit_code == 0, counted.output
    assert [(c["gateway_id"], c["documents"], c["sightings"]) for c in json.loads(counted.output)] == [(GW, 1, 1)]
    later = CliRunner().invoke(main, ["security", "events", "--since", "2026-03-01T13:00:00", "--data-dir", data_dir])
    assert later.output == "none\n", "nothing seen since then"
