"""Outcome payloads at rest in the gateway's outbox, sealed with libsodium's SecretBox (PyNaCl).

Not the cloud's Fernet (``shared.field_cipher``): ``cryptography`` (its Rust library with an OpenSSL of its own)
costs a serving agent about 7 MB from the first outcome a technician logs until it stops; PyNaCl's SecretBox
(XSalsa20-Poly1305, authenticated) about 1 MB (docs/edge.md, ``bench edge``). The key stays the outbox's key file
(``shared.field_cipher.key_file``: 32 random bytes in url-safe base64, so files older agents made still serve); the
box's key is derived from it with HMAC-SHA256, so the same bytes never key two algorithms. A payload an older agent
sealed with Fernet (``fernet:``) still opens (that one read loads ``cryptography``); the outbox seals it again when
it opens the file, so a gateway pays that once, after its upgrade.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from functools import cached_property

from shared.field_cipher import FieldCipher, FieldKeyError, is_encrypted

PREFIX = b"secretbox:"
#: what the box's key is derived for: another purpose of the same key file would name another
_PURPOSE = b"iotsphere outbox payloads"


def is_sealed(stored: bytes) -> bool:
    """Whether ``stored`` is what ``PayloadSeal.seal`` wrote (else plain, or sealed by an older agent)."""
    return stored.startswith(PREFIX)


class PayloadSeal:
    """Seals and opens whole payloads with one gateway key."""

    def __init__(self, key: bytes) -> None:
        from nacl.secret import SecretBox  # with the first payload sealed or opened, not with the outbox

        try:
            raw = base64.urlsafe_b64decode(key)
        except (binascii.Error, ValueError) as exc:
            raise FieldKeyError(f"the outbox key is not url-safe base64: {exc}") from exc
        if len(raw) != 32:
            raise FieldKeyError(f"the outbox key holds {len(raw)} bytes, not 32")
        self._key = key
        self._box = SecretBox(hmac.digest(raw, _PURPOSE, hashlib.sha256))

    def seal(self, payload: bytes) -> bytes:
        return PREFIX + bytes(self._box.encrypt(payload))

    def open(self, stored: bytes) -> bytes:
        """``seal`` undone; a payload an older agent sealed with Fernet opened with the same key file; plain bytes
        (from before the outbox sealed anything) as they are."""
        from nacl.exceptions import CryptoError

        if is_sealed(stored):
            try:
                return self._box.decrypt(stored.removeprefix(PREFIX))
            except CryptoError as exc:
                raise FieldKeyError("a sealed outbox payload does not open with the outbox key") from exc
        if is_encrypted(stored):
            return self._fernet.decrypt_bytes(stored)
        return stored

    @cached_property
    def _fernet(self) -> FieldCipher:
        """What older agents sealed with, made (and ``cryptography`` loaded) only for a payload they left."""
        return FieldCipher(self._key)
