"""After a rotation, whatever the revoked key signs is refused (issue 5 §4); test_rotation.py covers the follow-up.

Director key: ``iotsphere admin rotate-key director`` on a running world; the agent learns the new key through
TUF, refuses a document signed with the revoked key (a reject event naming the rule, stored by the cloud) and
installs the next release signed after the rotation. TUF roles: metadata signed with a rotated role's old key,
chained into the served repository as an attacker holding that key (and the other online keys) would, is
refused by python-tuf's ngclient, both by a fresh gateway and by one that trusted the repository before.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from securesystemslib.signer import Signer
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import TargetFile

from cloud.config import PASSPHRASE_ENV, CloudConfig
from cloud.releases import keystore, tuf_repo
from cloud.releases.rotation import rotate_key
from iotsphere.cli import main
from shared.director import RejectRule
from shared.messages import EventKind
from tests.e2e.world import BROKER, MODEL, World, running_world, write_artifacts
from tests.edge.mqtt_helpers import wait_for
from tests.edge.releases import build_serving_release
from tests.edge.tuf_world import PASSPHRASE as WORLD_PASSPHRASE
from tests.releases.conftest import PASSPHRASE

_CHAIN = ("targets", "snapshot", "timestamp")


def _release(world: World, folder: Path, version: str, seed: int) -> int:
    built = build_serving_release(version, seed=seed)
    world.release(write_artifacts(folder / version, built.release_bytes, built.onnx_bytes))
    return world.latest_document().signed.sequence


@pytest.mark.mqtt
def test_the_running_agent_refuses_a_document_signed_with_the_revoked_director_key(tmp_path: Path):
    with running_world(tmp_path) as world:
        first = _release(world, tmp_path / "artifacts", "1", seed=0)
        world.wait_event(EventKind.ACTIVATE.value, first)
        revoked = world.cloud.director_key

        rotated = CliRunner().invoke(
            main,
            ["admin", "rotate-key", "director", "--data-dir", str(world.config.data_dir), "--mqtt", BROKER],
            env={PASSPHRASE_ENV: WORLD_PASSPHRASE, "IOTSPHERE_TOPIC_PREFIX": world.config.topic_prefix},
        )
        assert rotated.exit_code == 0, rotated.output
        assert "Published 1 re-signed director document(s)." in rotated.output
        reissued = world.latest_document().signed.sequence
        assert reissued == first + 1
        # the re-signed document verifies only with the new key, which the agent fetched through TUF
        wait_for(lambda: world.reported_sequence() == reissued, 30, "the re-signed document accepted")

        world.cloud.publish(build_serving_release("2", seed=1))
        forged_sequence = reissued + 10  # a higher sequence does not help a revoked key
        desired = {MODEL: world.cloud.desired(MODEL, "2")}
        world.send_document(world.cloud.document(forged_sequence, desired, gateway=world.gateway_id, key=revoked))
        reject = world.wait_event(EventKind.REJECT.value, forged_sequence)
        assert reject["rule"] == RejectRule.DIRECTOR_SIGNATURE.value
        assert world.agent.store.active()[MODEL].version == "1"
        assert world.reported_sequence() == reissued

        after = _release(world, tmp_path / "artifacts", "3", seed=2)
        assert after == reissued + 1
        world.wait_event(EventKind.ACTIVATE.value, after)
        assert world.agent.store.active()[MODEL].version == "3"


def _forge(config: CloudConfig, role: str, revoked: Signer) -> None:
    """Sign a new version of ``role`` with its revoked key and chain it in with the current online keys.

    Targets gains a target; snapshot and timestamp above it are re-signed to point at the new versions, so
    the only thing wrong is the revoked signature. Written straight to the served folder, as the cloud's own
    signing path refuses a key root no longer lists.
    """
    current = tuf_repo.online_signers(config, PASSPHRASE, keystore.TUF_ROLES)
    repository = tuf_repo.DiskRepository(config.tuf_dir)
    chain = [role] if role == "root" else list(_CHAIN[_CHAIN.index(role) :])
    metadata = {name: repository.open(name) for name in {*chain, *_CHAIN}}
    for name in chain:
        md = metadata[name]
        if name == "targets":
            md.signed.targets["models/evil/1/model.onnx"] = TargetFile.from_data("models/evil/1/model.onnx", b"evil")
        elif name == "snapshot":
            md.signed.meta["targets.json"].version = metadata["targets"].signed.version
        elif name == "timestamp":
            md.signed.snapshot_meta.version = metadata["snapshot"].signed.version
        md.signed.version += 1
        md.sign(revoked if name == role else current[name], append=False)
        file_name = "timestamp.json" if name == "timestamp" else f"{md.signed.version}.{name}.json"
        (config.tuf_dir / "metadata" / file_name).write_bytes(md.to_bytes())


@pytest.mark.parametrize("role", keystore.TUF_ROLES)
def test_metadata_signed_with_a_revoked_tuf_role_key_is_refused_by_ngclient(role, initialized, artifacts, make_updater):
    made = artifacts()
    tuf_repo.add_release(initialized, PASSPHRASE, made.release_json, made.onnx_bytes)
    revoked = keystore.tuf_signer(initialized.keys_dir, role, PASSPHRASE)
    rotate_key(initialized, PASSPHRASE, role)
    make_updater("cached").refresh()  # a gateway that trusts the rotated repository

    _forge(initialized, role, revoked)

    for updater in (make_updater(), make_updater("cached")):
        with pytest.raises(UnsignedMetadataError, match=role):
            updater.refresh()


def test_the_cloud_refuses_to_sign_with_a_revoked_key(initialized):
    revoked = keystore.tuf_signer(initialized.keys_dir, "targets", PASSPHRASE)
    rotate_key(initialized, PASSPHRASE, "targets")
    signers = tuf_repo.online_signers(initialized, PASSPHRASE, keystore.TUF_ROLES)
    repository = tuf_repo.DiskRepository(initialized.tuf_dir, {**signers, "targets": revoked})

    with (
        pytest.raises(tuf_repo.ImageRepositoryError, match="does not verify against root"),
        repository.edit_targets(),
    ):
        pass  # leaving the block signs: with the revoked key, nothing is written
