"""Encryption at rest for sensitive text fields (technician notes, feedback comments), with Fernet.

The key is ``$IOTSPHERE_FIELD_KEY`` (a Fernet key) if set, else ``field-encryption.key`` in the cloud's keys
folder, created on first use with mode 0600. Every writer must reach the same key: the API and CLI are given
the keys folder of their ``CloudConfig``; the ingest writer has only a SQLite connection, so
``cipher_for_database`` finds the folder from the database file the same way ``CloudConfig`` places both
(``<data_dir>/iotsphere.db`` and ``<data_dir>/keys``).

Ciphertext is stored as text (or, for bytes, a blob) prefixed ``fernet:``; a value without the prefix was written
before encryption existed and is returned as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import tempfile
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from cloud.config import CloudConfig

KEY_ENV = "IOTSPHERE_FIELD_KEY"
KEY_FILE = "field-encryption.key"
_PREFIX = "fernet:"


def is_encrypted(stored: bytes) -> bool:
    """Whether ``stored`` is what ``encrypt_bytes`` wrote, rather than bytes kept before encryption existed."""
    return stored.startswith(_PREFIX.encode("ascii"))


class FieldKeyError(RuntimeError):
    """The field key is malformed, or a stored value does not decrypt with it."""


class FieldCipher:
    """Encrypts and decrypts one text field at a time; ``None`` passes through untouched."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError as exc:
            raise FieldKeyError(f"field key is not a Fernet key (32 url-safe base64 bytes): {exc}") from exc
        # a separate key for fingerprints, so a fingerprint never reveals anything about the encryption key
        self._mac_key = hmac.digest(key, b"iotsphere field fingerprint", hashlib.sha256)

    def encrypt(self, text: str | None) -> str | None:
        if text is None:
            return None
        return _PREFIX + self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str | None) -> str | None:
        if stored is None or not stored.startswith(_PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored.removeprefix(_PREFIX).encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise FieldKeyError("a stored field does not decrypt with the current field key") from exc

    def encrypt_bytes(self, data: bytes) -> bytes:
        """Bytes kept whole but unreadable without the key (a dead letter's payload: any bytes a gateway sent)."""
        return _PREFIX.encode("ascii") + self._fernet.encrypt(data)

    def decrypt_bytes(self, stored: bytes) -> bytes:
        """``encrypt_bytes`` undone; bytes stored before encryption (no prefix) come back as they are."""
        if not is_encrypted(stored):
            return stored
        try:
            return self._fernet.decrypt(stored.removeprefix(_PREFIX.encode("ascii")))
        except InvalidToken as exc:
            raise FieldKeyError("a stored value does not decrypt with the current field key") from exc

    def fingerprint(self, *parts: str) -> str:
        """A keyed digest of ``parts``: equal inputs match (idempotency) without storing them in the clear."""
        message = b"\x00".join(part.encode("utf-8") for part in parts)
        return hmac.new(self._mac_key, message, hashlib.sha256).hexdigest()[:32]


def cipher_for_keys_dir(keys_dir: Path) -> FieldCipher:
    """The cipher with the env key, or the key file in ``keys_dir`` (created 0600 on first use)."""
    return _cipher(Path(keys_dir).resolve(), os.environ.get(KEY_ENV))


def cipher_for_database(conn: sqlite3.Connection) -> FieldCipher:
    """The cipher of the cloud data folder holding this connection's database file."""
    files = [file for _, name, file in conn.execute("PRAGMA database_list") if name == "main" and file]
    if not files:
        if key := os.environ.get(KEY_ENV):
            return _cipher(None, key)
        raise FieldKeyError(f"an in-memory database has no keys folder: set {KEY_ENV}")
    return cipher_for_keys_dir(CloudConfig(data_dir=Path(files[0]).parent).keys_dir)


@lru_cache(maxsize=8)
def _cipher(keys_dir: Path | None, env_key: str | None) -> FieldCipher:
    if env_key:
        return FieldCipher(env_key.encode("ascii"))
    assert keys_dir is not None
    return FieldCipher(_key_file(keys_dir))


def _key_file(keys_dir: Path) -> bytes:
    """Read the key, or create it: written to a private temp file, then linked into place so that two
    processes starting together agree on one key (``os.link`` fails if the other one won)."""
    path = keys_dir / KEY_FILE
    if not path.exists():
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temp = tempfile.mkstemp(dir=keys_dir, prefix=".field-key-")  # mkstemp creates it 0600
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key())
                out.flush()
                os.fsync(out.fileno())
            os.link(temp, path)
        except FileExistsError:
            pass  # another process linked its key first: everyone uses that one, read below
        finally:
            os.unlink(temp)
    return path.read_bytes().strip()
