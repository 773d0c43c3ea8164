"""Messages ingest could not store (``dead_letters``): written encrypted, shown redacted.

A dead letter keeps what a gateway sent, so an operator can see what went wrong. That can be a technician's
outcome with its notes, so the payload rests encrypted with the field key (``cloud.crypto_fields``) like
the notes of a stored outcome, and is shown only as a redacted preview: every value under a sensitive key
(``SENSITIVE_KEYS``) is replaced, at any depth. A payload that is not JSON (malformed, cut short, NaN) is
redacted by its text instead: a quoted value after a sensitive key goes, up to its closing quote or the end.
The reason is the cloud's own text and never carries payload values.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from sqlalchemy import Connection

from cloud.crypto_fields import FieldCipher, FieldKeyError, cipher_for_database
from cloud.data import dead_letters as owner
from cloud.data.connections import connection_of
from shared.strict_json import loads as strict_loads

#: keys whose values are never shown: free text people type, and who typed it
SENSITIVE_KEYS = frozenset({"notes", "comments", "technician"})
REDACTED = "[redacted]"
PREVIEW_CHARS = 512

_KEYS = "|".join(sorted(SENSITIVE_KEYS))
#: a sensitive key, its colon, then a JSON string up to its closing quote or wherever the text ends
_SENSITIVE_TEXT = re.compile(rf'("(?:{_KEYS})"\s*:\s*)"(?:[^"\\]|\\.)*(?:"|\\?$)', re.IGNORECASE)


@dataclass(frozen=True)
class DeadLetterView:
    id: int
    topic: str
    reason: str
    received_at: str
    #: the payload's size as received
    payload_bytes: int
    #: the payload's start with sensitive values redacted, enough to see what went wrong
    payload_preview: str


def sealed(conn: sqlite3.Connection | Connection, letters: Iterable[tuple[str, bytes, str, str]]) -> list[tuple]:
    """(topic, payload, reason, received_at) rows for ``cloud.data.dead_letters.add``, each payload encrypted with
    the field key."""
    letters = list(letters)
    if not letters:
        return []
    encrypt = cipher_for_database(conn).encrypt_bytes
    return [(topic, encrypt(payload), reason, at) for topic, payload, reason, at in letters]


def recent(db: sqlite_utils.Database, limit: int) -> list[DeadLetterView]:
    """The newest ``limit`` dead letters, newest first, payloads redacted."""
    rows = owner.newest(connection_of(db), limit)
    cipher = cipher_for_database(connection_of(db)) if rows else None
    return [_view(row, cipher) for row in rows]


def _view(row: Mapping[str, Any], cipher: FieldCipher | None) -> DeadLetterView:
    stored = row["payload"] or b""
    if isinstance(stored, str):  # SQLite keeps whatever type was inserted
        stored = stored.encode("utf-8")
    try:
        payload = cipher.decrypt_bytes(stored) if cipher else stored
    except FieldKeyError:
        size, preview = None, "[the payload does not decrypt with the current field key]"
    else:
        size, preview = len(payload), redacted_preview(payload)
    return DeadLetterView(
        id=row["id"],
        topic=row["topic"],
        reason=row["reason"],
        received_at=row["received_at"],
        payload_bytes=len(stored) if size is None else size,
        payload_preview=preview,
    )


def redacted_preview(payload: bytes, chars: int = PREVIEW_CHARS) -> str:
    """The payload as text with every sensitive value replaced, then cut to ``chars``: redacted before it is cut,
    so a value is never half shown."""
    try:
        return json.dumps(_redact(strict_loads(payload)), ensure_ascii=False)[:chars]
    except (ValueError, RecursionError):  # not JSON (or too deep to walk): redact the text itself
        text = payload.decode("utf-8", "replace")
        return _SENSITIVE_TEXT.sub(lambda match: f'{match.group(1)}"{REDACTED}"', text)[:chars]


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if k.lower() in SENSITIVE_KEYS else _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(item) for item in value]
    return value
