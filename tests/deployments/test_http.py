"""``/api/deployments`` over real HTTP: filters, one gateway, roles and clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cloud.api.roles import Role
from cloud.deployments import DEADLINE_ENV
from shared.messages import EventKind
from tests.api.conftest import ServedCloud, auth, served_cloud
from tests.deployments.conftest import MODEL, Fleet


@pytest.fixture
def served(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServedCloud]:
    """gw-a committed on 1; gw-b directed two hours ago and silent since (overdue at the default deadline)."""
    monkeypatch.delenv(DEADLINE_ENV, raising=False)
    now = datetime.now(UTC)
    sequence = fleet.direct("gw-a", now - timedelta(minutes=5), **{MODEL: "1"})
    fleet.applied("gw-a", sequence, "1", now - timedelta(minutes=4), commit_after=timedelta(minutes=1))
    fleet.direct("gw-b", now - timedelta(hours=2), **{MODEL: "1"})
    with served_cloud(fleet.config) as cloud:
        yield cloud


def _get(served: ServedCloud, path: str, role: Role = Role.VIEWER, **params) -> list[dict]:
    response = served.http.get(path, params=params, headers=auth(served.tokens[role]))
    assert response.status_code == 200, response.text
    return response.json()


def test_list_gives_each_gateways_state_and_filters(served: ServedCloud):
    everything = _get(served, "/api/deployments")
    assert [(d["gateway_id"], d["version"], d["state"], d["stage"]) for d in everything] == [
        ("gw-a", "1", "committed", "committed"),
        ("gw-b", "1", "overdue", "pending"),
    ]
    assert everything[0]["committed_at"] is not None and everything[1]["overdue_at"] is not None

    assert [d["gateway_id"] for d in _get(served, "/api/deployments", state="overdue")] == ["gw-b"]
    assert [d["gateway_id"] for d in _get(served, "/api/deployments", gateway="gw-a")] == ["gw-a"]
    assert _get(served, "/api/deployments", model="anomaly") == []
    # a longer deadline: gw-b is merely pending
    assert [d["state"] for d in _get(served, "/api/deployments", gateway="gw-b", deadline_s=3 * 3600)] == ["pending"]


def test_one_gateway_and_an_unknown_one(served: ServedCloud):
    (deployment,) = _get(served, "/api/deployments/gw-a")
    assert (deployment["model_name"], deployment["state"], deployment["gateway_sequence"]) == (MODEL, "committed", None)

    missing = served.http.get("/api/deployments/gw-nope", headers=auth(served.tokens[Role.VIEWER]))
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no director document was issued to 'gw-nope'"}


def test_bad_filters_are_refused_and_a_key_is_required(served: ServedCloud):
    viewer = auth(served.tokens[Role.VIEWER])
    assert served.http.get("/api/deployments", params={"state": "lost"}, headers=viewer).status_code == 422
    assert served.http.get("/api/deployments", params={"deadline_s": 0}, headers=viewer).status_code == 422
    assert served.http.get("/api/deployments").status_code == 401
    assert served.http.get("/api/deployments", headers=auth(served.tokens[Role.GATEWAY])).status_code == 403


def test_a_gateway_event_reported_later_shows_at_once(fleet: Fleet, served: ServedCloud):
    sequence = fleet.db.execute("SELECT sequence FROM director_documents WHERE gateway_id = 'gw-b'").fetchone()[0]
    at, digest = datetime.now(UTC), fleet.digest("gw-b")  # the cloud's own document: a real rejection
    fleet.report("gw-b", EventKind.REJECT, at, "1", sequence, rule="director.signature", detail="bad", digest=digest)

    (deployment,) = _get(served, "/api/deployments/gw-b")
    assert (deployment["state"], deployment["rule"], deployment["reason"]) == ("rejected", "director.signature", "bad")


def test_a_forged_document_s_reject_is_a_security_event_over_http_not_a_rejection(fleet: Fleet, served: ServedCloud):
    sequence = fleet.db.execute("SELECT sequence FROM director_documents WHERE gateway_id = 'gw-a'").fetchone()[0]
    forged, at = "f" * 64, datetime.now(UTC)
    fleet.report("gw-a", EventKind.REJECT, at, None, sequence, None, "director.signature", "no valid signature", forged)

    (deployment,) = _get(served, "/api/deployments/gw-a")
    assert deployment["state"] == "committed"
    (event,) = _get(served, "/api/security-events", gateway_id="gw-a", since=(at - timedelta(seconds=1)).isoformat())
    assert (event["document_digest"], event["finding"], event["rule"]) == (forged, "forged", "director.signature")
    assert event["director_sequence"] == sequence and event["sightings"] == 1
    assert _get(served, "/api/security-events", gateway_id="gw-b") == []
    assert _get(served, "/api/security-events", since=(at + timedelta(seconds=1)).isoformat()) == []
    assert [(c["gateway_id"], c["documents"]) for c in _get(served, "/api/security-events/counts")] == [("gw-a", 1)]

    viewer = auth(served.tokens[Role.VIEWER])
    for params in ({"limit": 0}, {"limit": 1001}, {"since": "0.5"}, {"since": "yesterday"}):
        assert served.http.get("/api/security-events", params=params, headers=viewer).status_code == 422, params
    assert served.http.get("/api/security-events", headers=auth(served.tokens[Role.GATEWAY])).status_code == 403
    assert served.http.get("/api/security-events/counts").status_code == 401
