"""Rotating any key keeps gateways provisioned with the first root updating (no re-provisioning)."""

from __future__ import annotations

import pytest
from tuf.api.metadata import Metadata

from cloud.releases import director, keystore, tuf_repo
from cloud.releases.rotation import rotate_key
from cloud.storage import open_database
from shared.director import DirectorRejected, RejectRule, parse_director_keys, verify_director
from tests.releases.conftest import PASSPHRASE


@pytest.mark.parametrize("role", ["root", "targets", "snapshot", "timestamp"])
def test_rotated_tuf_role_key_is_followed_by_a_gateway_on_the_old_root(role, initialized, artifacts, make_updater):
    made = artifacts()
    tuf_repo.add_release(initialized, PASSPHRASE, made.release_json, made.onnx_bytes)
    make_updater("cached").refresh()  # a gateway that already trusts the current metadata
    old_keyid = keystore.tuf_signer(initialized.keys_dir, role, PASSPHRASE).public_key.keyid

    new = rotate_key(initialized, PASSPHRASE, role)

    root = Metadata.from_bytes(tuf_repo.trusted_root_bytes(initialized)).signed
    assert root.version == 2
    assert root.roles[role].keyids == [new.keyid] != [old_keyid]
    assert keystore.tuf_signer(initialized.keys_dir, role, PASSPHRASE).public_key.keyid == new.keyid
    assert list(initialized.keys_dir.glob(f"{role}.p12.retired-*"))
    # a fresh gateway on root v1 and the one with cached metadata both walk to root v2 and verify
    for updater in (make_updater(), make_updater("cached")):
        updater.refresh()
        assert updater.get_targetinfo("models/component_failure/1/model.onnx") is not None
    # and the repository keeps working under the new key
    second = artifacts(version="2", seed=2)
    tuf_repo.add_release(initialized, PASSPHRASE, second.release_json, second.onnx_bytes)
    updater = make_updater()
    updater.refresh()
    assert updater.get_targetinfo("models/component_failure/2/model.onnx") is not None


def test_rotated_director_key_reaches_gateways_through_tuf_and_documents_are_reissued(
    initialized, artifacts, make_updater, tmp_path
):
    made = artifacts()
    tuf_repo.add_release(initialized, PASSPHRASE, made.release_json, made.onnx_bytes)
    old_key = keystore.director_key(initialized.keys_dir, PASSPHRASE)
    db = open_database(initialized.database_path)
    desired = {"component_failure": director.desired_model(initialized, "component_failure", "1")}
    (before,) = director.issue_documents(initialized, db, old_key, ["gw-1"], desired).documents

    new = rotate_key(initialized, PASSPHRASE, "director")

    updater = make_updater()
    updater.refresh()
    path = updater.download_target(updater.get_targetinfo(tuf_repo.DIRECTOR_KEYS_TARGET), str(tmp_path / "keys.json"))
    with open(path, "rb") as handle:
        trusted = parse_director_keys(handle.read())
    assert list(trusted) == [new.keyid]

    after = director.latest_document(db, "gw-1")
    db.conn.close()
    assert after.signed.sequence == before.signed.sequence + 1
    assert after.signed.models == before.signed.models
    verify_director(after.to_json(), trusted, "gw-1", last_sequence=before.signed.sequence)
    with pytest.raises(DirectorRejected) as old_signature:
        verify_director(before.to_json(), trusted, "gw-1", last_sequence=None)
    assert old_signature.value.rule is RejectRule.DIRECTOR_SIGNATURE


def test_rotation_with_a_wrong_passphrase_changes_nothing(initialized):
    before = sorted(p.name for p in initialized.keys_dir.iterdir())
    root_before = tuf_repo.trusted_root_bytes(initialized)
    with pytest.raises(keystore.WrongPassphrase):
        rotate_key(initialized, "wrong", "targets")
    assert sorted(p.name for p in initialized.keys_dir.iterdir()) == before
    assert tuf_repo.trusted_root_bytes(initialized) == root_before
