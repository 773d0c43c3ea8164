"""Encryption at rest of sensitive fields (technician notes, feedback comments) in the cloud, with Fernet.

The cloud keeps one key for its database (``cloud.crypto_fields`` finds it). Ciphertext is stored prefixed
``fernet:`` (text, or a blob for bytes); a value without the prefix was written before encryption existed and is
returned as it is. A gateway's outbox keeps its key in a file made by ``key_file`` and seals with libsodium instead
(``edge_agent.payload_seal``, which opens the ``fernet:`` payloads older agents stored): ``cryptography`` loads with
the first ``FieldCipher``, so the key file, the prefix test and the error cost a gateway nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import tempfile
from pathlib import Path

_PREFIX = "fernet:"


def is_encrypted(stored: bytes) -> bool:
    """Whether ``stored`` is what ``encrypt_bytes`` wrote, rather than bytes kept before encryption existed."""
    return stored.startswith(_PREFIX.encode("ascii"))


class FieldKeyError(RuntimeError):
    """The field key is malformed, or a stored value does not decrypt with it."""


class FieldCipher:
    """Encrypts and decrypts one text field at a time; ``None`` passes through untouched."""

    def __init__(self, key: bytes) -> None:
        from cryptography.fernet import Fernet

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
        from cryptography.fernet import InvalidToken

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
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(stored.removeprefix(_PREFIX.encode("ascii")))
        except InvalidToken as exc:
            raise FieldKeyError("a stored value does not decrypt with the current field key") from exc

    def fingerprint(self, *parts: str) -> str:
        """A keyed digest of ``parts``: equal inputs match (idempotency) without storing them in the clear."""
        message = b"\x00".join(part.encode("utf-8") for part in parts)
        return hmac.new(self._mac_key, message, hashlib.sha256).hexdigest()[:32]


def key_file(path: Path) -> bytes:
    """The key in ``path`` (32 random bytes in url-safe base64: a Fernet key), created (0600, in a 0700 folder) on
    first use.

    Written to a private temp file, then linked into place, so two processes starting together agree on one key
    (``os.link`` fails for the one that lost, which reads the winner's).
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")  # mkstemp creates it 0600
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(base64.urlsafe_b64encode(os.urandom(32)))  # what Fernet.generate_key() makes
                out.flush()
                os.fsync(out.fileno())
            os.link(temp, path)
        except FileExistsError:
            pass  # another process linked its key first: everyone uses that one, read below
        finally:
            os.unlink(temp)
    return path.read_bytes().strip()
