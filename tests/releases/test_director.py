"""Director documents: signed, stored with increasing sequences, agreeing with TUF, verifiable by a gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.releases import director, keystore, tuf_repo
from cloud.storage import iso, open_database
from shared.director import DirectorRejected, RejectRule, parse_director_keys, verify_director
from tests.releases.conftest import PASSPHRASE


@pytest.fixture
def db(initialized):
    database = open_database(initialized.database_path)
    yield database
    database.conn.close()


@pytest.fixture
def director_key(initialized):
    return keystore.director_key(initialized.keys_dir, PASSPHRASE)


def _publish(config, made):
    return tuf_repo.add_release(config, PASSPHRASE, made.release_json, made.onnx_bytes)


def _trusted_director_keys(updater, tmp_path):
    """What a gateway does: fetch ``director/keys.json`` through TUF and trust the keys listed there."""
    info = updater.get_targetinfo(tuf_repo.DIRECTOR_KEYS_TARGET)
    path = updater.download_target(info, str(tmp_path / "director-keys.json"))
    with open(path, "rb") as handle:
        return parse_director_keys(handle.read())


def test_document_verifies_with_the_director_key_published_through_tuf(
    initialized, db, director_key, artifacts, make_updater, tmp_path
):
    _publish(initialized, artifacts(version="1"))
    desired = {"component_failure": director.desired_model(initialized, "component_failure", "1")}
    (document,) = director.issue_documents(initialized, db, director_key, ["gw-1"], desired).documents

    updater = make_updater()
    updater.refresh()
    trusted = _trusted_director_keys(updater, tmp_path)
    accepted = verify_director(document.to_json(), trusted, "gw-1", last_sequence=None)

    model = accepted.signed.models["component_failure"]
    model_info = updater.get_targetinfo(model.model_target)
    release_info = updater.get_targetinfo(model.release_target)
    assert (model.model_sha256, model.model_length) == (model_info.hashes["sha256"], model_info.length)
    assert (model.release_sha256, model.release_length) == (release_info.hashes["sha256"], release_info.length)
    with pytest.raises(DirectorRejected) as rejected:
        verify_director(document.to_json(), trusted, "gw-2", last_sequence=None)
    assert rejected.value.rule is RejectRule.DIRECTOR_GATEWAY


def test_sequence_increases_across_releases_and_rollback_beats_replay(initialized, db, director_key, artifacts):
    _publish(initialized, artifacts(version="1"))
    _publish(initialized, artifacts(version="2", seed=2))
    trusted = {keystore.key_info("director", director_key).keyid: director_key.public_key()}

    sequences = []
    for version in ("1", "2", "1"):  # release, upgrade, operator rollback to a release still in TUF
        desired = {"component_failure": director.desired_model(initialized, "component_failure", version)}
        (document,) = director.issue_documents(initialized, db, director_key, ["gw-1"], desired).documents
        sequences.append(document.signed.sequence)
        if len(sequences) == 2:
            upgrade = document
    assert sequences == [1, 2, 3]
    stored = director.latest_document(db, "gw-1")
    assert stored.signed.sequence == 3 and stored.signed.models["component_failure"].version == "1"
    verify_director(stored.to_json(), trusted, "gw-1", last_sequence=2)
    with pytest.raises(DirectorRejected) as replay:
        verify_director(upgrade.to_json(), trusted, "gw-1", last_sequence=3)
    assert replay.value.rule is RejectRule.DIRECTOR_SEQUENCE


def test_sequence_starts_above_what_the_gateway_last_reported(initialized, db, director_key, artifacts):
    _publish(initialized, artifacts())
    db["gateways"].insert({"gateway_id": "gw-restored", "last_seen": iso(datetime.now(UTC)), "director_sequence": 41})
    desired = {"component_failure": director.desired_model(initialized, "component_failure", "1")}
    (document,) = director.issue_documents(initialized, db, director_key, ["gw-restored"], desired).documents
    assert document.signed.sequence == 42


def test_documents_keep_other_models_and_carry_the_configured_validity(initialized, db, director_key, artifacts):
    _publish(initialized, artifacts(model_name="component_failure"))
    _publish(initialized, artifacts(model_name="usage_pattern"))
    now = datetime(2030, 1, 1, tzinfo=UTC)
    for name in ("component_failure", "usage_pattern"):
        desired = {name: director.desired_model(initialized, name, "1")}
        (document,) = director.issue_documents(
            initialized, db, director_key, ["gw-1"], desired, validity=timedelta(hours=6), now=now
        ).documents
    assert set(document.signed.models) == {"component_failure", "usage_pattern"}
    assert (document.signed.issued_at, document.signed.expires_at) == ("2030-01-01T00:00:00Z", "2030-01-01T06:00:00Z")
    assert director.unpublished_gateways(db) == ["gw-1"]
    assert director.gateways_expiring(db, now + timedelta(hours=7)) == ["gw-1"]
    assert director.gateways_expiring(db, now + timedelta(hours=5)) == []


def test_a_version_not_in_tuf_cannot_be_directed(initialized):
    with pytest.raises(director.DirectorError, match="not published"):
        director.desired_model(initialized, "component_failure", "9")


def test_an_invalid_gateway_id_is_refused_before_anything_is_stored(initialized, db, director_key):
    with pytest.raises(ValueError, match="gateway id"):
        director.issue_documents(initialized, db, director_key, ["gw-1", "bad/gw"], {})
    assert director.latest_document(db, "gw-1") is None


def test_known_gateways_include_those_seen_and_those_directed_by_name(initialized, db, director_key):
    db["gateways"].insert({"gateway_id": "gw-seen", "last_seen": iso(datetime.now(UTC))})
    director.issue_documents(initialized, db, director_key, ["gw-named"], {})
    assert director.known_gateways(db) == ["gw-named", "gw-seen"]
    assert director.gateways_without_document(db) == ["gw-seen"]
