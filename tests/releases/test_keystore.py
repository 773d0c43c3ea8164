"""Keys on disk are encrypted, and a wrong or missing passphrase fails clearly."""

from __future__ import annotations

import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from cloud.config import PASSPHRASE_ENV
from cloud.releases import keystore
from shared.signing import generate_private_key, key_id, public_key_hex
from tests.releases.conftest import PASSPHRASE


def test_every_key_is_stored_encrypted_and_private(tmp_path):
    keys_dir = tmp_path / "keys"
    keys = keystore.create_keys(keys_dir, PASSPHRASE)
    assert set(keys) == {"root", "targets", "snapshot", "timestamp", "director", "audit"}
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    for name, key in keys.items():
        path = keystore.key_path(keys_dir, name)
        stored = path.read_bytes()
        assert key.private_bytes_raw() not in stored  # the raw secret never touches the disk
        assert PASSPHRASE.encode() not in stored
        with pytest.raises(ValueError):  # unreadable without the passphrase
            pkcs12.load_key_and_certificates(stored, None)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert public_key_hex(keystore.load_private_key(keys_dir, name, PASSPHRASE)) == public_key_hex(key)


def test_wrong_passphrase_is_a_clear_error(tmp_path):
    keystore.create_keys(tmp_path / "keys", PASSPHRASE)
    with pytest.raises(keystore.WrongPassphrase, match="wrong passphrase for the signing keys"):
        keystore.director_key(tmp_path / "keys", "not the passphrase")
    with pytest.raises(keystore.WrongPassphrase):
        keystore.tuf_signer(tmp_path / "keys", "targets", "not the passphrase")


def test_missing_keys_point_at_init(tmp_path):
    with pytest.raises(keystore.KeystoreError, match="iotsphere cloud init"):
        keystore.director_key(tmp_path / "keys", PASSPHRASE)


def test_keys_are_never_overwritten_and_an_empty_passphrase_is_refused(tmp_path):
    with pytest.raises(keystore.KeystoreError, match="empty"):
        keystore.create_keys(tmp_path / "keys", "")
    keystore.create_keys(tmp_path / "keys", PASSPHRASE)
    before = keystore.key_path(tmp_path / "keys", "root").read_bytes()
    with pytest.raises(keystore.KeystoreError, match="already exist"):
        keystore.create_keys(tmp_path / "keys", PASSPHRASE)
    assert keystore.key_path(tmp_path / "keys", "root").read_bytes() == before


def test_an_unencrypted_key_file_is_refused(tmp_path):
    key = generate_private_key()
    plain = pkcs12.serialize_key_and_certificates(b"director", key, None, None, serialization.NoEncryption())
    (tmp_path / "keys").mkdir()
    keystore.key_path(tmp_path / "keys", "director").write_bytes(plain)
    with pytest.raises(keystore.KeystoreError, match="cannot decrypt"):
        keystore.director_key(tmp_path / "keys", PASSPHRASE)


def test_key_ids_tuf_for_roles_and_shared_signing_for_the_director(tmp_path):
    keys = keystore.create_keys(tmp_path / "keys", PASSPHRASE)
    info = {name: keystore.key_info(name, key) for name, key in keys.items()}
    assert info["director"].keyid == key_id(keys["director"])
    signer = keystore.tuf_signer(tmp_path / "keys", "targets", PASSPHRASE)
    assert info["targets"].keyid == signer.public_key.keyid
    assert signer.public_key.keytype == "ed25519" and signer.public_key.scheme == "ed25519"


def test_passphrase_comes_from_the_environment(monkeypatch):
    """(The hidden prompt is exercised through the real CLI in test_cli.)"""
    monkeypatch.setenv(PASSPHRASE_ENV, "from-env")
    assert keystore.passphrase_from_env_or_prompt() == "from-env"
    monkeypatch.setenv(PASSPHRASE_ENV, "")
    with pytest.raises(keystore.KeystoreError, match="empty"):
        keystore.passphrase_from_env_or_prompt()
