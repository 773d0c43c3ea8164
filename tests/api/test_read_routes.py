"""Models, gateways, dead letters and the key listing over real HTTP."""

from __future__ import annotations

import httpx

from cloud.api.roles import Role
from shared.messages import EventKind
from tests.api import seed
from tests.api.conftest import auth


def test_models_list_groups_versions_oldest_first_with_json_parsed(db, http: httpx.Client, tokens) -> None:
    seed.model_version(db, "component_failure", "2", "production", days=2)
    seed.model_version(db, "component_failure", "1", "archived", days=1)
    seed.model_version(db, "anomaly", "1", "candidate", days=3)

    response = http.get("/api/models", headers=auth(tokens[Role.VIEWER]))

    assert response.status_code == 200, response.text
    models = response.json()
    assert [m["model_name"] for m in models] == ["anomaly", "component_failure"]
    versions = models[1]["versions"]
    assert [(v["model_version"], v["status"]) for v in versions] == [("1", "archived"), ("2", "production")]
    assert versions[1]["metrics"] == {"roc_auc": 0.92}
    assert versions[1]["lineage"] == {"training_rows": 3000}
    assert versions[1]["device_types"] == ["tank-50gal-electric"]
    assert versions[1]["release_target"] == "models/component_failure/2/release.json"
    assert versions[1]["model_sha256"] == "ab" * 32


def test_model_and_version_routes_and_their_404s(db, http: httpx.Client, tokens) -> None:
    seed.model_version(db, "component_failure", "1", "production", days=1)
    viewer = auth(tokens[Role.VIEWER])

    assert http.get("/api/models/component_failure", headers=viewer).json()["versions"][0]["model_version"] == "1"
    assert http.get("/api/models/component_failure/1", headers=viewer).json()["status"] == "production"
    for path, detail in [
        ("/api/models/nope", "unknown model 'nope'"),
        ("/api/models/nope/1", "unknown model 'nope'"),
        ("/api/models/component_failure/9", "model 'component_failure' has no version '9'"),
    ]:
        response = http.get(path, headers=viewer)
        assert (response.status_code, response.json()) == (404, {"detail": detail}), path


def test_gateways_list_and_detail_with_status_devices_and_recent_events(db, http: httpx.Client, tokens) -> None:
    seed.gateway(db, "gw-001", online=True, director_sequence=7)
    seed.gateway(db, "gw-002", online=False, director_sequence=3)
    for device_id in ("wh-2", "wh-1"):
        seed.device(db, device_id, gateway_id="gw-001")
    seed.event(db, "gw-001", EventKind.INSTALL, minutes=1)
    seed.event(db, "gw-001", EventKind.REJECT, minutes=2, rule="golden_vectors")
    seed.event(db, "gw-001", EventKind.ACTIVATE, minutes=3)
    seed.event(db, "gw-002", EventKind.ROLLBACK, minutes=4)
    viewer = auth(tokens[Role.VIEWER])

    listed = http.get("/api/gateways", headers=viewer).json()
    detail = http.get("/api/gateways/gw-001", params={"events": 2}, headers=viewer).json()

    assert [(g["gateway_id"], g["online"], g["director_sequence"], g["devices"]) for g in listed] == [
        ("gw-001", True, 7, 2),
        ("gw-002", False, 3, 0),
    ]
    assert detail["agent_version"] == "0.1.0"
    assert detail["last_seen"] == "2026-01-31T07:00:00Z"
    assert detail["status"]["models"][0]["active_version"] == "2"
    assert detail["status"]["gateway_id"] == "gw-001"
    assert detail["device_ids"] == ["wh-1", "wh-2"]
    events = [(e["kind"], e["rule"]) for e in detail["recent_events"]]
    assert events == [("activate", None), ("reject", "golden_vectors")]


def test_unknown_gateway_is_404(db, http: httpx.Client, tokens) -> None:
    response = http.get("/api/gateways/gw-404", headers=auth(tokens[Role.VIEWER]))

    assert (response.status_code, response.json()) == (404, {"detail": "unknown gateway 'gw-404'"})


def test_dead_letters_newest_first_with_a_safe_preview(db, http: httpx.Client, tokens) -> None:
    seed.dead_letter(db, "iotsphere/v1/gw/gw-001/up/predictions", b'{"schema": 1}', "validation: msg_id missing")
    seed.dead_letter(db, "iotsphere/v1/gw/gw-001/up/status", b"\xff\xfe not json", "not UTF-8 JSON")

    response = http.get("/api/dead-letters", headers=auth(tokens[Role.OPERATOR]))

    assert response.status_code == 200, response.text
    first, second = response.json()
    assert (first["topic"], first["reason"], first["payload_bytes"]) == (
        "iotsphere/v1/gw/gw-001/up/status",
        "not UTF-8 JSON",
        11,
    )
    assert first["payload_preview"] == "\ufffd\ufffd not json"
    assert second["payload_preview"] == '{"schema": 1}'


def test_admin_key_listing_shows_no_secrets(db, http: httpx.Client, tokens) -> None:
    response = http.get("/api/admin/keys", headers=auth(tokens[Role.ADMIN]))

    assert response.status_code == 200
    keys = response.json()
    assert sorted(k["role"] for k in keys) == sorted(r.value for r in Role)
    assert {k["gateway_id"] for k in keys} == {None, "gw-001"}
    text = response.text
    assert all(token.split("_", 2)[2] not in text for token in tokens.values())
    assert "secret" not in text and "sha256$" not in text
