"""Promotions and rollbacks over real HTTP, a real SQLite file and the real Mosquitto: never half done, never unsafe.

- A gateway that cannot be directed (it reported the largest director sequence there is) is listed in the answer
  and recorded; the others get their documents and the promotion completes.
- A fault that fails directing as a whole (a SQLite trigger ending the transaction) leaves the registry as it was.
- A release whose file on disk is not what TUF signed is refused before anything changes.
- A rollback to a version that failed evaluation needs the admin override promotion needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cloud.api.roles import Role
from cloud.config import PASSPHRASE_ENV, CloudConfig
from cloud.registry import MLModelRegistry
from cloud.releases import director
from cloud.storage import open_database
from iotsphere.cli import main
from shared.director import verify_director
from shared.limits import MAX_SAFE_INT
from tests.api.conftest import ServedCloud, auth, served_cloud
from tests.registry.test_http import retained_document, trusted_director_keys
from tests.releases.conftest import PASSPHRASE, clear_retained, onnx_models, released_cloud  # noqa: F401 (fixture)
from tests.rows import execute

pytestmark = pytest.mark.mqtt

NAME = "component_failure"
GATEWAYS = ["gw-ps-a", "gw-ps-b", "gw-ps-c"]


@pytest.fixture
def released(tmp_path: Path, onnx_models: dict[int, bytes], monkeypatch) -> Iterator[CloudConfig]:  # noqa: F811
    config = released_cloud(tmp_path, onnx_models, GATEWAYS, NAME)
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    yield config
    clear_retained(config, GATEWAYS)


@pytest.fixture
def cloud(released: CloudConfig) -> Iterator[ServedCloud]:
    with served_cloud(released) as served:
        yield served


def _sql(config: CloudConfig, *statements: str) -> None:
    db = open_database(config.database_url)
    try:
        for statement in statements:
            execute(db, statement)
    finally:
        db.close()


def _promote(cloud: ServedCloud, version: str, role: Role = Role.OPERATOR, **body):
    return cloud.http.post(
        f"/api/models/{NAME}/{version}/promote", json={"reason": "tests", **body}, headers=auth(cloud.tokens[role])
    )


def _state(config: CloudConfig) -> tuple:
    """What a promotion changes: production, history, the fleet's desired state and every gateway's document."""
    db = open_database(config.database_url)
    try:
        active = MLModelRegistry(db).get_active_model(NAME)
        documents = {g: director.latest_document(db, g) for g in GATEWAYS}
        return (
            active["model_version"] if active else None,
            len(MLModelRegistry(db).history(NAME)),
            {name: model.version for name, model in director.fleet_desired(db).items()},
            {g: (d.signed.sequence, d.signed.models[NAME].version) if d else None for g, d in documents.items()},
        )
    finally:
        db.close()


def test_a_gateway_that_cannot_be_directed_is_listed_and_the_others_get_theirs(cloud: ServedCloud):
    _sql(cloud.config, f"UPDATE gateways SET director_sequence = {MAX_SAFE_INT} WHERE gateway_id = 'gw-ps-b'")

    promoted = _promote(cloud, "1")

    assert promoted.status_code == 200, promoted.text
    body = promoted.json()
    assert [d["gateway_id"] for d in body["directed"]] == ["gw-ps-a", "gw-ps-c"]
    [failure] = body["not_directed"]
    assert failure["gateway_id"] == "gw-ps-b" and f"director sequence {MAX_SAFE_INT}" in failure["reason"]
    trusted = trusted_director_keys(cloud.config)
    for gateway_id in ("gw-ps-a", "gw-ps-c"):
        document = retained_document(cloud.config, gateway_id)
        assert verify_director(document.to_json(), trusted, gateway_id, None).signed.models[NAME].version == "1"
    version, history, fleet, documents = _state(cloud.config)
    assert (version, history, fleet) == ("1", 1, {NAME: "1"}), "the promotion completed"
    assert documents["gw-ps-b"] is None
    kept = cloud.http.get("/api/director/failures", headers=auth(cloud.tokens[Role.VIEWER]))
    assert [(f["gateway_id"], f["reason"]) for f in kept.json()] == [("gw-ps-b", failure["reason"])]
    listed = CliRunner().invoke(main, ["deployments", "not-directed", "--data-dir", str(cloud.config.data_dir)])
    header, row = listed.output.splitlines()
    assert listed.exit_code == 0 and header.split() == ["GATEWAY", "SINCE", "ATTEMPTS", "REASON"]
    assert row.split()[0] == "gw-ps-b" and row.split()[2] == "1"


@pytest.mark.sqlite_only  # SQLite's RAISE(ROLLBACK) stands in for a database failing mid-transaction
def test_a_fault_while_directing_leaves_the_registry_as_it_was(cloud: ServedCloud):
    assert _promote(cloud, "1").status_code == 200
    before = _state(cloud.config)
    _sql(
        cloud.config,
        "CREATE TRIGGER lose_transaction BEFORE UPDATE ON director_documents WHEN NEW.gateway_id = 'gw-ps-c' "
        "BEGIN SELECT RAISE(ROLLBACK, 'database disk image is malformed'); END",
    )

    refused = _promote(cloud, "2")

    assert refused.status_code == 503, refused.text
    assert "the registry is unchanged" in refused.json()["detail"]
    assert "database disk image is malformed" in refused.json()["detail"]
    assert _state(cloud.config) == before, "production, history, fleet and documents all as they were"


def _tamper_model_file(config: CloudConfig, version: str) -> Path:
    [stored] = (config.tuf_dir / "targets" / "models" / NAME / version).glob("*.model.onnx")
    stored.write_bytes(stored.read_bytes()[:-1] + b"\x00")
    return stored


def test_a_release_whose_file_on_disk_is_not_what_tuf_signed_is_refused(cloud: ServedCloud):
    assert _promote(cloud, "1").status_code == 200
    before = _state(cloud.config)
    tampered = _tamper_model_file(cloud.config, "2")

    refused = _promote(cloud, "2")

    assert refused.status_code == 409, refused.text
    assert "does not match its signed TUF target" in refused.json()["detail"]
    assert str(tampered) in refused.json()["detail"]
    assert _state(cloud.config) == before

    tampered.unlink()
    missing = _promote(cloud, "2")
    assert missing.status_code == 409 and "is missing" in missing.json()["detail"]


def test_cli_refuses_a_tampered_release_with_a_message_and_exit_code(released: CloudConfig):
    _tamper_model_file(released, "1")
    result = CliRunner().invoke(
        main, ["models", "promote", NAME, "1", "--reason", "x", "--data-dir", str(released.data_dir)]
    )
    assert result.exit_code == 1
    assert "does not match its signed TUF target" in result.output
    assert _state(released)[0] is None


def test_rollback_to_a_version_that_failed_evaluation_needs_the_admin_override(cloud: ServedCloud):
    db = open_database(cloud.config.database_url)
    try:
        MLModelRegistry(db).record_evaluation(NAME, "1", passed=False, details={"mean_roc_auc": 0.5})
    finally:
        db.close()
    assert _promote(cloud, "1", Role.ADMIN, override=True).status_code == 200
    assert _promote(cloud, "2").status_code == 200
    url = f"/api/models/{NAME}/rollback"
    body = {"reason": "version 2 regressed"}

    refused = cloud.http.post(url, json=body, headers=auth(cloud.tokens[Role.OPERATOR]))
    assert refused.status_code == 409, refused.text
    assert "version 1 failed evaluation: rolling back to it needs an admin override" in refused.json()["detail"]
    override = {**body, "override": True}
    assert cloud.http.post(url, json=override, headers=auth(cloud.tokens[Role.OPERATOR])).status_code == 403
    assert _state(cloud.config)[0] == "2"

    admitted = cloud.http.post(url, json=override, headers=auth(cloud.tokens[Role.ADMIN]))
    assert admitted.status_code == 200, admitted.text
    assert (admitted.json()["history"]["to_version"], admitted.json()["history"]["override"]) == ("1", True)


def test_cli_rollback_to_a_failed_version_needs_override(released: CloudConfig, monkeypatch):
    monkeypatch.setenv("IOTSPHERE_TOPIC_PREFIX", released.topic_prefix)
    data = ["--data-dir", str(released.data_dir)]
    db = open_database(released.database_url)
    try:
        MLModelRegistry(db).record_evaluation(NAME, "1", passed=False, details={})
    finally:
        db.close()
    runner = CliRunner()
    assert runner.invoke(main, ["models", "promote", NAME, "1", "--reason", "a", "--override", *data]).exit_code == 0
    assert runner.invoke(main, ["models", "promote", NAME, "2", "--reason", "b", *data]).exit_code == 0

    refused = runner.invoke(main, ["models", "rollback", NAME, "--reason", "c", *data])
    assert refused.exit_code == 1 and "failed evaluation: rolling back to it needs an admin override" in refused.output
    assert _state(released)[0] == "2"
    admitted = runner.invoke(main, ["models", "rollback", NAME, "--reason", "c", "--override", *data])
    assert admitted.exit_code == 0, admitted.output
    assert "2 -> 1" in admitted.output and _state(released)[0] == "1"


def test_cli_promotion_lists_the_gateway_it_could_not_direct(released: CloudConfig, monkeypatch):
    monkeypatch.setenv("IOTSPHERE_TOPIC_PREFIX", released.topic_prefix)
    _sql(released, f"UPDATE gateways SET director_sequence = {MAX_SAFE_INT} WHERE gateway_id = 'gw-ps-b'")
    result = CliRunner().invoke(
        main, ["models", "promote", NAME, "1", "--reason", "first", "--data-dir", str(released.data_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "Directed gw-ps-a" in result.output and "Directed gw-ps-c" in result.output
    assert f"NOT directed gw-ps-b: gw-ps-b is at director sequence {MAX_SAFE_INT}" in result.output
