"""Key rotation without re-provisioning gateways (docs/architecture.md, "Trust model").

A TUF role key is replaced by a new root version that lists the new key instead of the old one;
gateways walk root versions forward from the one they were provisioned with, so they follow. A
root key rotation is signed by both the outgoing and the incoming root key, as TUF requires. The
director key is replaced in the ``director/keys.json`` target, and every gateway's document is
re-issued under the new key.

The new key is stored (encrypted, as ``<name>.p12.new``) before any metadata trusts it and made
current only after the metadata is committed, so a crash never leaves trusted metadata whose key
was lost.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import Signer

from cloud.audit import AuditLog
from cloud.config import CloudConfig, configured_actor
from cloud.errors import Invalid
from cloud.releases import director, keystore, tuf_repo
from cloud.releases.service import ReleaseService
from cloud.storage import open_database
from shared.director import director_keys_document
from shared.signing import generate_private_key


def rotate_key(
    config: CloudConfig,
    passphrase: str,
    name: str,
    policy: tuf_repo.ExpiryPolicy | None = None,
    *,
    actor: str | None = None,
) -> keystore.KeyInfo:
    """Replace the named key (a TUF role, ``director`` or ``audit``), audited as ``actor`` once the new key is
    current; return the new key's info."""
    if name not in keystore.KEY_NAMES:
        raise Invalid(f"unknown key {name!r}: choose one of {', '.join(keystore.KEY_NAMES)}")
    tuf_repo.require_initialized(config)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    new_key = generate_private_key()
    with tuf_repo.exclusive(config):
        # the keys are decrypted first, so a wrong passphrase changes nothing
        signers = tuf_repo.online_signers(config, passphrase, keystore.TUF_ROLES)
        keystore.stage_key(config.keys_dir, name, new_key, passphrase)
        if name == keystore.DIRECTOR:
            _replace_director_key(config, signers, new_key, policy)
        elif name in keystore.TUF_ROLES:
            _replace_role_key(config, signers, name, new_key, policy)
        else:  # the audit key: nothing but its checkpoints trusts it, and the old ones keep the retired key
            keystore.retire_audit_public_key(config.keys_dir, stamp)
        keystore.commit_staged_key(config.keys_dir, name, stamp)
    if name == keystore.AUDIT:
        keystore.audit_key(config.keys_dir, passphrase)  # publishes the new audit.pub
    info = keystore.key_info(name, new_key)
    _audit(config, actor or configured_actor(), name, info.keyid)
    if name == keystore.DIRECTOR:
        _reissue_all(config, passphrase)
    return info


def _audit(config: CloudConfig, actor: str, name: str, keyid: str) -> None:
    """The rotation is files, not a database change: its entry is written once the new key is current."""
    db = open_database(config.database_url)
    try:
        AuditLog(db).record(actor, "admin.rotate-key", name, {"keyid": keyid})
    finally:
        db.close()


def _replace_role_key(
    config: CloudConfig,
    signers: dict[str, Signer],
    role: str,
    new_key: Ed25519PrivateKey,
    policy: tuf_repo.ExpiryPolicy | None,
) -> None:
    new_signer = keystore.role_signer(new_key)
    outgoing_root = signers["root"] if role == "root" else None
    repository = tuf_repo.DiskRepository(config.tuf_dir, {**signers, role: new_signer}, policy, outgoing_root)
    with repository.edit_root() as root:
        for keyid in list(root.roles[role].keyids):
            root.revoke_key(keyid, role)
        root.add_key(new_signer.public_key, role)
    # re-sign the role under its new key so what gateways fetch next verifies against the new root
    if role == "targets":
        with repository.edit_targets():
            pass  # leaving the block re-signs targets with the new key, bumping its version
    if role in ("targets", "snapshot"):
        repository.do_snapshot(force=True)
    if role != "root":
        repository.do_timestamp(force=True)


def _replace_director_key(
    config: CloudConfig, signers: dict[str, Signer], new_key: Ed25519PrivateKey, policy: tuf_repo.ExpiryPolicy | None
) -> None:
    repository = tuf_repo.DiskRepository(config.tuf_dir, signers, policy)
    data = director_keys_document([new_key])
    with repository.edit_targets() as targets:
        targets.targets[tuf_repo.DIRECTOR_KEYS_TARGET] = repository.store_target(tuf_repo.DIRECTOR_KEYS_TARGET, data)
    repository.do_snapshot()
    repository.do_timestamp()


def _reissue_all(config: CloudConfig, passphrase: str) -> None:
    """Every gateway gets its current desired state again, signed by the new key (sent by the publisher)."""
    db = open_database(config.database_url)
    try:
        ReleaseService(config, passphrase).direct(db, director.directed_gateways(db))
    finally:
        db.close()
