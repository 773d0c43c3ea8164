"""A forged copy of a gateway's current director document, end to end (issue 11 §3).

A real agent, the real Mosquitto, ingest and the API over HTTP: version 2 reaches the gateway through a staged
rollout and commits; before the rollout is judged, a copy of the gateway's document with one signature character
changed (same sequence) is published retained on its ``down/desired``, and then a document that breaks parsers.
The agent rejects both and names each by digest; the deployment stays committed, the rollout completes instead of
halting and rolling back, and both documents are security events in the API and the CLI, with the rule that
caught them, alerted once in the log; the alert has the gateway's own document published again in their place.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cloud.releases import director
from shared.director import RejectRule, document_digest
from shared.messages import EventKind
from tests.api.conftest import auth
from tests.e2e.test_operator_rollback import committed_version_one, deployment, released_undirected, wait_commits
from tests.e2e.world import BROKER, MODEL, running_world
from tests.edge.mqtt_helpers import wait_for
from tests.edge.releases import build_serving_release
from tests.registry.test_http import retained_document

pytestmark = pytest.mark.mqtt


def _forged(genuine: bytes) -> bytes:
    """``genuine`` with one character of its signature changed: the same sequence, another digest."""
    at = genuine.index(b'"sig": "') + len(b'"sig": "')
    return genuine[:at] + (b"A" if genuine[at : at + 1] != b"A" else b"B") + genuine[at + 1 :]


def test_a_forged_copy_is_a_security_event_and_neither_fails_the_deployment_nor_halts_the_rollout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="cloud.security_events")
    with running_world(tmp_path) as world:
        committed_version_one(world, tmp_path / "artifacts")

        released_undirected(world, build_serving_release("2", seed=1))
        world.iotsphere("rollouts", "start", MODEL, "2", "--reason", "beats 1", "--stage", "100", "--mqtt", BROKER)
        genuine = world.latest_document()
        world.wait_event(EventKind.ACTIVATE.value, genuine.signed.sequence)
        assert {p["model_version"] for p in world.next_tick()} == {"2"}
        wait_commits(world, "2", 1)
        (commit,) = [e for e in world.events() if e["kind"] == EventKind.COMMIT.value and e["model_version"] == "2"]
        assert commit["document_digest"] == document_digest(genuine.to_json()), "the commit names its document"
        assert (deployment(world)["version"], deployment(world)["state"]) == ("2", "committed")

        forged = _forged(genuine.to_json())
        malformed = b'{"signed": {"sequence": 1e400, "gateway_id": "' + world.gateway_id.encode() + b'"}}'
        for payload in (forged, malformed):
            world.send_document(payload)
            wait_for(
                lambda p=payload: any(e["document_digest"] == document_digest(p) for e in world.events()),
                30,
                "the gateway's reject of the document",
            )
        reject = next(e for e in world.events() if e["document_digest"] == document_digest(forged))
        assert (reject["kind"], reject["rule"]) == ("reject", RejectRule.DIRECTOR_SIGNATURE.value)
        assert reject["director_sequence"] == genuine.signed.sequence, "it claims the genuine document's sequence"
        wait_for(lambda: len(_alerts(caplog)) == 2, 10, "the ingest worker's alerts")
        assert all(line.startswith(f"forged director document seen on {world.gateway_id}") for line in _alerts(caplog))
        assert director.unpublished_gateways(world.db) == [world.gateway_id], "its own document is to be sent again"

        assert (deployment(world)["version"], deployment(world)["state"]) == ("2", "committed")
        events_before = len(world.events())
        advanced = world.iotsphere("rollouts", "advance", "1", "--mqtt", BROKER)  # publishes what is pending
        assert ": completed [100% passed]" in advanced, advanced
        assert retained_document(world.config, world.gateway_id).to_json() == genuine.to_json(), "back in its place"

        viewer = auth(world.viewer_token)
        found = world.http.get("/api/security-events", params={"gateway_id": world.gateway_id}, headers=viewer)
        assert found.status_code == 200, found.text
        by_digest = {e["document_digest"]: e for e in found.json()}
        assert set(by_digest) == {document_digest(forged), document_digest(malformed)}
        assert (by_digest[document_digest(forged)]["finding"], by_digest[document_digest(forged)]["rule"]) == (
            "forged",
            RejectRule.DIRECTOR_SIGNATURE.value,
        )
        assert by_digest[document_digest(malformed)]["rule"] == RejectRule.DIRECTOR_FORMAT.value
        counts = world.http.get("/api/security-events/counts", headers=viewer).json()
        assert [(c["gateway_id"], c["documents"]) for c in counts] == [(world.gateway_id, 2)]
        gateway = world.http.get(f"/api/gateways/{world.gateway_id}", headers=viewer).json()
        assert gateway["security_events"] == 2
        assert document_digest(forged) in {e["document_digest"] for e in gateway["recent_events"]}
        listed = world.iotsphere("security", "events", "--gateway", world.gateway_id)
        assert f"forged director document seen on {world.gateway_id}: reject [director.signature]" in listed
        assert len(world.events()) == events_before, "the resent document was the one applied: nothing to report"


def _alerts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cloud.security_events" and r.levelname == "WARNING"]
