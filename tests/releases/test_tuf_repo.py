"""The image repository through the real path: files on disk, real HTTP, python-tuf's ngclient."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from tuf.api.exceptions import ExpiredMetadataError, LengthOrHashMismatchError
from tuf.api.metadata import Metadata

from cloud.releases import keystore, tuf_repo
from tests.releases.conftest import PASSPHRASE


def test_fresh_release_is_fetched_and_verified_by_ngclient(initialized, artifacts, make_updater, tmp_path):
    made = artifacts(version="1")
    published = tuf_repo.add_release(initialized, PASSPHRASE, made.release_json, made.onnx_bytes)

    updater = make_updater()
    updater.refresh()
    for path, expected in (
        (published.model_target.path, made.onnx_bytes),
        (published.release_target.path, made.release_json),
    ):
        info = updater.get_targetinfo(path)
        assert info is not None, path
        downloaded = updater.download_target(info, str(tmp_path / hashlib.sha256(path.encode()).hexdigest()))
        with open(downloaded, "rb") as handle:
            assert handle.read() == expected
    assert published.model_target.path == "models/component_failure/1/model.onnx"
    assert published.release_target.path == "models/component_failure/1/release.json"


def test_altered_target_bytes_on_the_server_are_refused(initialized, artifacts, make_updater, tmp_path):
    made = artifacts()
    published = tuf_repo.add_release(initialized, PASSPHRASE, made.release_json, made.onnx_bytes)
    (served,) = published.model_target.get_prefixed_paths()
    tampered = bytearray(made.onnx_bytes)
    tampered[-1] ^= 0xFF
    (initialized.tuf_dir / "targets" / served).write_bytes(bytes(tampered))

    updater = make_updater()
    info = updater.get_targetinfo(published.model_target.path)
    with pytest.raises(LengthOrHashMismatchError):
        updater.download_target(info, str(tmp_path / "model.onnx"))
    assert not (tmp_path / "model.onnx").exists()


def test_expired_timestamp_is_refused(initialized, make_updater):
    """A timestamp that was validly signed but has expired (a frozen repository) must not be trusted."""
    path = initialized.tuf_dir / "metadata" / "timestamp.json"
    timestamp = Metadata.from_file(str(path))
    timestamp.signed.version += 1
    timestamp.signed.expires = datetime.now(UTC) - timedelta(minutes=1)
    timestamp.sign(keystore.tuf_signer(initialized.keys_dir, "timestamp", PASSPHRASE))
    path.write_bytes(timestamp.to_bytes())

    with pytest.raises(ExpiredMetadataError):
        make_updater().refresh()


def test_refresh_timestamp_and_renewal_keep_the_repository_fresh(initialized, make_updater):
    before = Metadata.from_file(str(initialized.tuf_dir / "metadata" / "timestamp.json")).signed
    assert tuf_repo.refresh_timestamp(initialized, PASSPHRASE) == before.version + 1

    assert tuf_repo.expiring_roles(initialized) == []
    # sixteen days on, every online role (targets 30 d, snapshot 7 d, timestamp 1 d) is past half its lifetime
    later = datetime.now(UTC) + timedelta(days=16)
    assert tuf_repo.renew_expiring(initialized, PASSPHRASE, now=later) == ["targets", "snapshot", "timestamp"]
    repository = tuf_repo.DiskRepository(initialized.tuf_dir)
    assert repository.targets().version == 2
    assert repository.snapshot().version == 2
    assert repository.snapshot().meta["targets.json"].version == 2
    assert repository.timestamp().snapshot_meta.version == 2
    make_updater().refresh()  # the renewed chain still verifies from the provisioned root


def test_versions_bump_through_targets_snapshot_timestamp(initialized, artifacts):
    repository = tuf_repo.DiskRepository(initialized.tuf_dir)
    start = (repository.targets().version, repository.snapshot().version, repository.timestamp().version)
    first = artifacts(version="1")
    second = artifacts(version="2", seed=2)
    tuf_repo.add_release(initialized, PASSPHRASE, first.release_json, first.onnx_bytes)
    published = tuf_repo.add_release(initialized, PASSPHRASE, second.release_json, second.onnx_bytes)

    repository = tuf_repo.DiskRepository(initialized.tuf_dir)
    assert (repository.targets().version, repository.snapshot().version, repository.timestamp().version) == tuple(
        v + 2 for v in start
    )
    assert published.targets_version == repository.targets().version
    assert set(tuf_repo.list_targets(initialized)) == {
        tuf_repo.DIRECTOR_KEYS_TARGET,
        "models/component_failure/1/release.json",
        "models/component_failure/1/model.onnx",
        "models/component_failure/2/release.json",
        "models/component_failure/2/model.onnx",
    }
    metadata = initialized.tuf_dir / "metadata"
    assert (metadata / f"{repository.targets().version}.targets.json").exists()
    assert (metadata / f"{repository.snapshot().version}.snapshot.json").exists()


def test_release_whose_hash_does_not_match_the_onnx_bytes_is_refused(initialized, artifacts, onnx_models):
    made = artifacts()
    with pytest.raises(tuf_repo.ReleaseRefused, match="sha256"):
        tuf_repo.add_release(initialized, PASSPHRASE, made.release_json, onnx_models[2])
    assert set(tuf_repo.list_targets(initialized)) == {tuf_repo.DIRECTOR_KEYS_TARGET}


def test_release_with_wrong_length_or_target_path_is_refused(initialized, artifacts):
    made = artifacts()
    document = json.loads(made.release_json)
    with pytest.raises(tuf_repo.ReleaseRefused, match="model target"):
        wrong_path = {**document, "model_target": "models/other/1/model.onnx"}
        tuf_repo.add_release(initialized, PASSPHRASE, json.dumps(wrong_path).encode(), made.onnx_bytes)
    with pytest.raises(tuf_repo.ReleaseRefused, match="not a valid release file"):
        tuf_repo.add_release(initialized, PASSPHRASE, b'{"model_name": "x"}', made.onnx_bytes)
    with pytest.raises(tuf_repo.ReleaseRefused, match="model name"):
        bad_name = {**document, "model_name": "../etc", "model_target": "models/../etc/1/model.onnx"}
        tuf_repo.add_release(initialized, PASSPHRASE, json.dumps(bad_name).encode(), made.onnx_bytes)


def test_releases_are_immutable(initialized, artifacts, tmp_path):
    made = artifacts(version="1")
    first = tuf_repo.add_release(initialized, PASSPHRASE, made.release_json, made.onnx_bytes)
    again = tuf_repo.add_release(initialized, PASSPHRASE, made.release_json, made.onnx_bytes)
    assert again.already_published and again.targets_version == first.targets_version

    other = artifacts(version="1", seed=2)
    with pytest.raises(tuf_repo.ReleaseRefused, match="already published"):
        tuf_repo.add_release(initialized, PASSPHRASE, other.release_json, other.onnx_bytes)


def test_a_crash_before_the_timestamp_leaves_the_published_repository_intact(
    initialized, artifacts, make_updater, monkeypatch
):
    """Everything before ``timestamp.json`` is written under new names, so readers keep the old repository."""
    made = artifacts()

    def crash(self, force=False):
        raise OSError("power lost")

    monkeypatch.setattr(tuf_repo.DiskRepository, "do_timestamp", crash)
    with pytest.raises(OSError, match="power lost"):
        tuf_repo.add_release(initialized, PASSPHRASE, made.release_json, made.onnx_bytes)
    updater = make_updater()
    updater.refresh()
    assert updater.get_targetinfo("models/component_failure/1/model.onnx") is None
    assert updater.get_targetinfo(tuf_repo.DIRECTOR_KEYS_TARGET) is not None

    monkeypatch.undo()
    tuf_repo.add_release(initialized, PASSPHRASE, made.release_json, made.onnx_bytes)
    updater = make_updater()
    updater.refresh()
    assert updater.get_targetinfo("models/component_failure/1/model.onnx") is not None


def test_operations_before_init_say_so(config, artifacts):
    made = artifacts()
    with pytest.raises(tuf_repo.NotInitialized, match="iotsphere cloud init"):
        tuf_repo.add_release(config, PASSPHRASE, made.release_json, made.onnx_bytes)
    with pytest.raises(tuf_repo.NotInitialized):
        tuf_repo.trusted_root_bytes(config)


def test_init_refuses_to_overwrite_and_force_moves_the_old_state_aside(initialized):
    old_root = tuf_repo.trusted_root_bytes(initialized)
    with pytest.raises(tuf_repo.ImageRepositoryError, match="--force"):
        tuf_repo.init_repository(initialized, PASSPHRASE)
    tuf_repo.init_repository(initialized, PASSPHRASE, force=True)
    assert tuf_repo.trusted_root_bytes(initialized) != old_root
    replaced = sorted(p.name.split(".")[0] for p in initialized.data_dir.glob("*.replaced-*"))
    assert replaced == ["keys", "tuf"]


def test_root_lists_the_tuf_role_key_ids_as_tuf_computes_them(initialized):
    root = Metadata.from_bytes(tuf_repo.trusted_root_bytes(initialized)).signed
    for role in keystore.TUF_ROLES:
        signer = keystore.tuf_signer(initialized.keys_dir, role, PASSPHRASE)
        assert root.roles[role].keyids == [signer.public_key.keyid]
    assert root.consistent_snapshot
    assert root.expires - datetime.now(UTC) > timedelta(days=300)


def test_a_gateway_with_cached_metadata_sees_the_next_release(initialized, artifacts, make_updater):
    """The same client cache across releases: ngclient walks forward from what it already trusts."""
    first, second = artifacts(version="1"), artifacts(version="2", seed=2)
    tuf_repo.add_release(initialized, PASSPHRASE, first.release_json, first.onnx_bytes)
    before = make_updater("gw")
    before.refresh()
    assert before.get_targetinfo("models/component_failure/2/model.onnx") is None
    tuf_repo.add_release(initialized, PASSPHRASE, second.release_json, second.onnx_bytes)
    after = make_updater("gw")
    after.refresh()
    info = after.get_targetinfo("models/component_failure/2/model.onnx")
    with open(after.download_target(info), "rb") as handle:
        assert handle.read() == second.onnx_bytes


def test_expiry_policy_is_configurable_and_must_be_positive(config):
    policy = tuf_repo.ExpiryPolicy(timestamp=timedelta(hours=2), snapshot=timedelta(days=3))
    tuf_repo.init_repository(config, PASSPHRASE, policy)
    repository = tuf_repo.DiskRepository(config.tuf_dir)
    now = datetime.now(UTC)
    assert timedelta(hours=1) < repository.timestamp().expires - now <= timedelta(hours=2)
    assert timedelta(days=2) < repository.snapshot().expires - now <= timedelta(days=3)
    assert timedelta(days=29) < repository.targets().expires - now <= timedelta(days=30)
    with pytest.raises(ValueError, match="timestamp metadata lifetime must be positive"):
        tuf_repo.ExpiryPolicy(timestamp=timedelta(0))
