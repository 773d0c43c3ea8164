"""API keys: issued once, stored hashed, looked up by id, revocable.

A key reads ``iots_<key id>_<secret>``. The key id (12 hex digits) is stored in clear and finds
the row; the secret (256 random bits from ``secrets.token_urlsafe``) is stored only as its SHA-256.

Why SHA-256 and not scrypt: a slow, salted hash protects *guessable* secrets (passwords) against
offline brute force. Our secrets are 256-bit random tokens, so even a leaked database gives an
attacker nothing to guess with; a fast hash is as strong here, and it keeps checking a key on every
request cheap instead of handing anyone who sends bad keys a CPU-burning lever (scrypt costs tens of
milliseconds per call on purpose). The stored value names its scheme (``sha256$...``) so it can change.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from cloud.api.roles import Role
from cloud.audit import AuditLog
from cloud.config import configured_actor
from cloud.data import keys as stored_keys
from cloud.data.connections import connection_of, write_transaction
from cloud.errors import Invalid, NotFound, Refused
from cloud.storage import iso
from shared.topics import validate_id

TOKEN_PREFIX = "iots"
_KEY_ID_HEX_DIGITS = 12
_SECRET_BYTES = 32
_TOKEN_RE = re.compile(rf"^{TOKEN_PREFIX}_([0-9a-f]{{{_KEY_ID_HEX_DIGITS}}})_([A-Za-z0-9_-]{{20,}})$")
_HASH_SCHEME = "sha256"
MAX_NAME_LENGTH = 128


class InvalidKeyRequest(Invalid):
    """A key that cannot be made as asked (its name, its role's scope)."""


class GatewayKeyExists(Refused, ValueError):
    """The gateway already holds a live key: one credential per gateway."""


class UnknownApiKey(NotFound, LookupError):
    """No key has this id."""


class KeyRejected(Exception):
    """A presented key does not authenticate; ``str(exc)`` is safe to show the caller."""


class UnknownKey(KeyRejected):
    """No live key has this id and secret."""


class RevokedKey(KeyRejected):
    """The key existed and was revoked."""


@dataclass(frozen=True)
class ApiKey:
    """A stored key without its secret: what routes see of the caller and what listings show."""

    key_id: str
    name: str
    role: Role
    gateway_id: str | None
    created_at: str
    revoked_at: str | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def actor(self) -> str:
        """Who the audit log names for a change made with this key."""
        return f"key:{self.key_id}"


@dataclass(frozen=True)
class IssuedKey:
    """A new key and its token; the token exists only here, so show it once and drop it."""

    key: ApiKey
    token: str


def _hash_secret(secret: str) -> str:
    return f"{_HASH_SCHEME}${hashlib.sha256(secret.encode('utf-8')).hexdigest()}"


def _row_to_key(row: Mapping[str, Any]) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        name=row["name"],
        role=Role(row["role"]),
        gateway_id=row["gateway_id"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class KeyStore:
    """The ``api_keys`` table: create, authenticate, list and revoke keys."""

    def __init__(self, db: sqlite_utils.Database):
        self._db = db

    def create(
        self, role: Role | str, name: str, gateway_id: str | None = None, *, actor: str | None = None
    ) -> IssuedKey:
        """Issue a key and audit it (never its token). A gateway key names its gateway, and a gateway holds one live
        key at a time."""
        role = Role(role)
        name = name.strip()
        if not name or len(name) > MAX_NAME_LENGTH:
            raise InvalidKeyRequest(f"key name must be 1-{MAX_NAME_LENGTH} characters")
        if role == Role.GATEWAY:
            if not gateway_id:
                raise InvalidKeyRequest("a gateway key needs the gateway id it belongs to")
            validate_id(gateway_id, "gateway id")
        elif gateway_id:
            raise InvalidKeyRequest(f"only gateway keys belong to a gateway, not {role.value} keys")
        key = ApiKey(
            key_id=secrets.token_hex(_KEY_ID_HEX_DIGITS // 2),
            name=name,
            role=role,
            gateway_id=gateway_id,
            created_at=iso(datetime.now(UTC)),
            revoked_at=None,
        )
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        # the write lock before the check, so two processes cannot both pass it
        with write_transaction(self._db) as connection:
            live = stored_keys.live_key_of_gateway(connection, gateway_id) if gateway_id else None
            if live:
                raise GatewayKeyExists(
                    f"gateway {gateway_id!r} already has a live key ({live}): "
                    "one credential per gateway, so revoke that one first"
                )
            stored_keys.add(
                connection,
                {
                    "key_id": key.key_id,
                    "name": key.name,
                    "role": key.role.value,
                    "gateway_id": key.gateway_id,
                    "secret_hash": _hash_secret(secret),
                    "created_at": key.created_at,
                    "revoked_at": None,
                },
            )
            details = {"role": role.value, "name": key.name, "gateway_id": gateway_id}
            AuditLog(self._db).record(actor or configured_actor(), "admin.create-key", key.key_id, details)
        return IssuedKey(key=key, token=f"{TOKEN_PREFIX}_{key.key_id}_{secret}")

    def authenticate(self, token: str) -> ApiKey:
        """The key a token belongs to; raise UnknownKey or RevokedKey.

        Revocation is reported only once the secret matched, so guessing reveals nothing about key ids.
        """
        match = _TOKEN_RE.match(token.strip())
        if not match:
            raise UnknownKey(f"malformed API key: expected {TOKEN_PREFIX}_<key id>_<secret>")
        key_id, secret = match.groups()
        row = stored_keys.find(connection_of(self._db), key_id)
        if row is None or not hmac.compare_digest(row["secret_hash"], _hash_secret(secret)):
            raise UnknownKey("unknown API key")
        key = _row_to_key(row)
        if key.revoked:
            raise RevokedKey(f"API key {key.key_id} was revoked at {key.revoked_at}")
        return key

    def get(self, key_id: str) -> ApiKey:
        row = stored_keys.find(connection_of(self._db), key_id)
        if row is None:
            raise UnknownApiKey(f"no API key with id {key_id!r}")
        return _row_to_key(row)

    def list(self) -> list[ApiKey]:
        """Every key, oldest first, revoked ones included (they explain past access)."""
        return [_row_to_key(row) for row in stored_keys.every_key(connection_of(self._db))]

    def revoke(self, key_id: str, *, actor: str | None = None) -> ApiKey:
        """Revoke a key and audit it (idempotent: revoking twice keeps the first time and records once); raise
        LookupError if unknown."""
        key = self.get(key_id)
        if key.revoked:
            return key
        with write_transaction(self._db) as connection:
            if stored_keys.revoke(connection, key_id, iso(datetime.now(UTC))):
                details = {"role": key.role.value, "name": key.name}
                AuditLog(self._db).record(actor or configured_actor(), "admin.revoke-key", key_id, details)
        return self.get(key_id)
