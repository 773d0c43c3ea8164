"""The signing keys, encrypted at rest: the four TUF roles, the director and the audit log, one Ed25519 key each.

Each key is a PKCS#12 file encrypted with the operator's passphrase under a slow KDF (``shared.signing``), so a copy
of the data folder alone signs nothing. The passphrase comes from ``IOTSPHERE_KEY_PASSPHRASE`` for
services and scripts, or from a hidden prompt for a person at a terminal.

The audit key signs checkpoints of the audit log (``cloud.audit_checkpoints``). Its public key is also kept in the
clear (``audit.pub``), so anyone can verify checkpoints without the passphrase.
"""

from __future__ import annotations

import getpass
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from securesystemslib.signer import CryptoSigner, SSlibKey

from cloud.config import PASSPHRASE_ENV, key_passphrase
from cloud.errors import Unavailable
from shared.atomic_files import atomic_write, fsync_directory
from shared.signing import (
    decrypt_private_key,
    encrypt_private_key,
    generate_private_key,
    key_id,
    load_public_key_hex,
    public_key_hex,
)

#: TUF's top-level roles, each with its own key
TUF_ROLES = ("root", "targets", "snapshot", "timestamp")
#: the director key signs per-gateway desired state (Uptane's second repository)
DIRECTOR = "director"
#: signs the audit log's checkpoints; gateways never see it
AUDIT = "audit"
#: every key of the keystore, each one ``admin rotate-key`` can replace
KEY_NAMES = (*TUF_ROLES, DIRECTOR, AUDIT)


class KeystoreError(Unavailable):
    """A key is missing or unreadable; the message says what to do."""


class WrongPassphrase(KeystoreError):
    """The passphrase does not decrypt the signing keys."""


@dataclass(frozen=True)
class KeyInfo:
    name: str
    #: TUF's key id for role keys; ``shared.signing.key_id`` for the director key (what gateways match)
    keyid: str
    public_key_hex: str


def passphrase_from_env_or_prompt(confirm: bool = False) -> str:
    """The key passphrase from the environment, else asked for without echo."""
    passphrase = key_passphrase()
    if passphrase is None:
        try:
            with warnings.catch_warnings():  # without a terminal getpass warns, then reads the end of stdin
                warnings.simplefilter("ignore", getpass.GetPassWarning)
                passphrase = click.prompt(
                    "Passphrase for the signing keys", hide_input=True, confirmation_prompt=confirm
                )
        except click.Abort:
            raise KeystoreError(
                f"no passphrase for the signing keys: set {PASSPHRASE_ENV} (nothing answered the prompt)"
            ) from None
    if not passphrase:
        raise KeystoreError("the signing-key passphrase must not be empty")
    return passphrase


def tuf_public_key(key: Ed25519PrivateKey) -> SSlibKey:
    """The key as TUF lists it in root metadata, with the key id TUF computes."""
    return SSlibKey.from_crypto(key.public_key(), scheme="ed25519")


def key_info(name: str, key: Ed25519PrivateKey) -> KeyInfo:
    keyid = tuf_public_key(key).keyid if name in TUF_ROLES else key_id(key)
    return KeyInfo(name=name, keyid=keyid, public_key_hex=public_key_hex(key))


def key_path(keys_dir: Path, name: str) -> Path:
    return keys_dir / f"{name}.p12"


def keys_exist(keys_dir: Path) -> bool:
    return any(key_path(keys_dir, name).exists() for name in KEY_NAMES)


def create_keys(keys_dir: Path, passphrase: str) -> dict[str, Ed25519PrivateKey]:
    """Generate every key and store it encrypted (files 0600 in a 0700 folder); refuse to overwrite."""
    if not passphrase:
        raise KeystoreError("the signing-key passphrase must not be empty")
    if keys_exist(keys_dir):
        raise KeystoreError(f"signing keys already exist in {keys_dir}")
    keys_dir.mkdir(parents=True, exist_ok=True)
    keys_dir.chmod(0o700)
    keys = {name: generate_private_key() for name in KEY_NAMES}
    for name, key in keys.items():
        atomic_write(key_path(keys_dir, name), encrypt_private_key(key, passphrase.encode(), name), mode=0o600)
    atomic_write(audit_public_key_path(keys_dir), public_key_hex(keys[AUDIT]).encode(), mode=0o600)
    return keys


def audit_public_key_path(keys_dir: Path) -> Path:
    return keys_dir / f"{AUDIT}.pub"


def audit_key(keys_dir: Path, passphrase: str) -> Ed25519PrivateKey:
    """The audit key, created (encrypted, with its ``audit.pub``) in a keystore made before it existed.

    Two processes creating it at once agree on one key: each links its file into place and the loser reads the
    winner's. A passphrase that does not open the other keys is refused before anything is created.
    """
    path = key_path(keys_dir, AUDIT)
    if not path.exists():
        load_private_key(keys_dir, DIRECTOR, passphrase)  # the keystore exists and this is its passphrase
        staged = path.with_name(f".{AUDIT}.p12.{os.getpid()}.new")
        atomic_write(staged, encrypt_private_key(generate_private_key(), passphrase.encode(), AUDIT), mode=0o600)
        try:
            os.link(staged, path)
        except FileExistsError:
            pass  # another process created it first: use that one
        finally:
            staged.unlink()
        fsync_directory(keys_dir)
    key = load_private_key(keys_dir, AUDIT, passphrase)
    public = audit_public_key_path(keys_dir)
    if not public.exists():
        atomic_write(public, public_key_hex(key).encode(), mode=0o600)
    elif public.read_text().strip() != public_key_hex(key):
        raise KeystoreError(
            f"{public} is not the public half of the encrypted audit key: it was replaced (to verify other "
            "signatures?); delete it to have it written again"
        )
    return key


def retired_audit_keys(keys_dir: Path, passphrase: str) -> list[Ed25519PrivateKey]:
    """Audit keys rotated out (``audit.p12.retired-*``), oldest first: the checkpoints they signed still count."""
    keys = []
    for path in sorted(keys_dir.glob(f"{AUDIT}.p12.retired-*")):
        try:
            keys.append(decrypt_private_key(path.read_bytes(), passphrase.encode()))
        except ValueError as exc:
            raise WrongPassphrase(f"wrong passphrase for the signing keys: cannot decrypt {path.name} ({exc})") from exc
    return keys


def retire_audit_public_key(keys_dir: Path, stamp: str) -> None:
    """Keep the public half of an audit key being rotated out as ``audit.pub.retired-<stamp>``."""
    public = audit_public_key_path(keys_dir)
    if public.exists():
        public.rename(public.with_name(f"{public.name}.retired-{stamp}"))


def audit_public_keys(keys_dir: Path) -> list[Ed25519PublicKey]:
    """The published public halves, no passphrase needed: the current audit key's first, then the retired ones'."""
    retired = sorted(keys_dir.glob(f"{AUDIT}.pub.retired-*"))
    return [_public_key_file(path) for path in (audit_public_key_path(keys_dir), *retired)]


def audit_public_key(keys_dir: Path) -> Ed25519PublicKey:
    """The current audit key's public half (``audit.pub``)."""
    return _public_key_file(audit_public_key_path(keys_dir))


def _public_key_file(path: Path) -> Ed25519PublicKey:
    try:
        return load_public_key_hex(path.read_text().strip())
    except FileNotFoundError:
        raise KeystoreError(
            f"no audit key at {path}: run `iotsphere admin audit checkpoint` (with the key passphrase) to create it"
        ) from None
    except ValueError as exc:
        raise KeystoreError(f"{path} is not an Ed25519 public key in hex: {exc}") from exc


def stage_key(keys_dir: Path, name: str, key: Ed25519PrivateKey, passphrase: str) -> Path:
    """Store a replacement key durably (``<name>.p12.new``) before anything starts trusting it."""
    staged = key_path(keys_dir, name).with_suffix(".p12.new")
    atomic_write(staged, encrypt_private_key(key, passphrase.encode(), name), mode=0o600)
    return staged


def commit_staged_key(keys_dir: Path, name: str, stamp: str) -> Path:
    """Make the staged key current; keep the replaced one (still encrypted) as ``<name>.p12.retired-<stamp>``."""
    current = key_path(keys_dir, name)
    retired = current.with_name(f"{current.name}.retired-{stamp}")
    current.rename(retired)
    current.with_suffix(".p12.new").rename(current)
    fsync_directory(keys_dir)
    return retired


def load_private_key(keys_dir: Path, name: str, passphrase: str) -> Ed25519PrivateKey:
    path = key_path(keys_dir, name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeystoreError(f"no {name} key at {path}: run `iotsphere cloud init` first") from None
    try:
        return decrypt_private_key(data, passphrase.encode())
    except ValueError as exc:
        raise WrongPassphrase(
            f"wrong passphrase for the signing keys in {keys_dir}: cannot decrypt {path.name} ({exc})"
        ) from exc


def tuf_signer(keys_dir: Path, role: str, passphrase: str) -> CryptoSigner:
    """A TUF signer for one top-level role."""
    if role not in TUF_ROLES:
        raise ValueError(f"{role!r} is not a TUF top-level role")
    return role_signer(load_private_key(keys_dir, role, passphrase))


def role_signer(key: Ed25519PrivateKey) -> CryptoSigner:
    return CryptoSigner(key, tuf_public_key(key))


def director_key(keys_dir: Path, passphrase: str) -> Ed25519PrivateKey:
    return load_private_key(keys_dir, DIRECTOR, passphrase)
