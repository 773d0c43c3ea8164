"""The audit log: every mutating action, hash-chained so that editing, deleting or reordering a row shows.

Each entry stores the previous entry's hash and its own, SHA-256 over the canonical JSON (``shared.canonical``)
of (id, at, actor, action, target, details, prev_hash). ``verify`` recomputes the chain and names the first
entry that does not fit. Appends take the write lock before they read the head (SQLite's ``BEGIN IMMEDIATE``; a
table lock on PostgreSQL, ``cloud.data.audit.locked_head``), so two writers — the API and a CLI command, or two API
workers — never read the same head and never fork the chain.

What a chain cannot show is the newest entries cut off the end, or a row edited with every hash after it
recomputed: signed checkpoints of the head (``cloud.audit_checkpoints``) show both. Triggers refuse UPDATE and
DELETE on the table, which stops mistakes; someone with the file can drop them, and the chain and the
checkpoints are what then tell.

Details never carry secrets: callers pass ids, hashes and outcomes, not API key tokens, passphrases or comments.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils
from securesystemslib.exceptions import FormatError

from cloud.data import audit as stored_audit
from cloud.data.connections import connection_of, write_transaction
from cloud.storage import iso
from shared.canonical import canonical_bytes
from shared.log_setup import request_id

#: ``prev_hash`` of the first entry.
GENESIS_HASH = "0" * 64
MAX_LIMIT = 1000


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class VerifyResult:
    """``ok`` with the head to note down, or the first entry that breaks the chain and why."""

    ok: bool
    checked: int
    head_id: int | None
    head_hash: str | None
    broken_id: int | None = None
    reason: str | None = None


def entry_hash(
    entry_id: int, at: str, actor: str, action: str, target: str, details: dict[str, Any], prev_hash: str
) -> str:
    document = {
        "id": entry_id,
        "at": at,
        "actor": actor,
        "action": action,
        "target": target,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_bytes(document)).hexdigest()


def body_hash(body: bytes) -> str:
    """What the log keeps of a request body: its hash, never the body (it may hold comments or secrets)."""
    return hashlib.sha256(body).hexdigest()


def _row_to_entry(row: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        at=row["at"],
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        details=json.loads(row["details_json"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


class AuditLog:
    """The ``audit_log`` table (migration 9): append, read, verify."""

    def __init__(self, db: sqlite_utils.Database):
        self._db = db

    def record(self, actor: str, action: str, target: str, details: dict[str, Any]) -> AuditEntry:
        """Append one entry: inside the caller's open transaction (``cloud.data.connections.write_transaction``, which
        holds the write lock) it joins it, so the entry commits or rolls back with the change it records; with none
        open it takes its own.

        ``details`` must be JSON without floats (canonical JSON has none): ValueError before anything is written.
        Made while serving an HTTP request, the entry's details carry its ``request_id``, which the API's log lines
        and the response's X-Request-ID header also carry.
        """
        if (rid := request_id.get()) is not None:
            details = {**details, "request_id": rid}
        details_json = json.dumps(details, sort_keys=True)
        try:
            canonical_bytes(details)
        except FormatError as exc:
            raise ValueError(f"audit details must be JSON without floats: {exc}") from exc
        # the write lock before reading the head: no two appends share a head
        with write_transaction(self._db) as connection:
            head = stored_audit.locked_head(connection)
            entry_id, prev_hash = (head["id"] + 1, head["hash"]) if head else (1, GENESIS_HASH)
            at = iso(datetime.now(UTC))
            digest = entry_hash(entry_id, at, actor, action, target, json.loads(details_json), prev_hash)
            stored_audit.append(
                connection,
                {
                    "id": entry_id,
                    "at": at,
                    "actor": actor,
                    "action": action,
                    "target": target,
                    "details_json": details_json,
                    "prev_hash": prev_hash,
                    "hash": digest,
                },
            )
        return AuditEntry(entry_id, at, actor, action, target, json.loads(details_json), prev_hash, digest)

    def entries(
        self, limit: int = 100, since_id: int = 0, actor: str | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        """Entries after ``since_id``, oldest first, at most ``limit`` (1..1000); page on with the last id."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        rows = stored_audit.entries(connection_of(self._db), since_id, limit, actor, action)
        return [_row_to_entry(row) for row in rows]

    def verify(self) -> VerifyResult:
        """Walk the chain from the first entry; stop at the first one whose id, link or hash is wrong."""
        return self.heads(())[0]

    def heads(self, counts: Iterable[int]) -> tuple[VerifyResult, dict[int, str]]:
        """``verify``, and the head hash after each of ``counts`` entries (0: the genesis hash) that the walk
        reached: what a checkpoint of that many entries must have signed. One consistent read of the table."""
        wanted = set(counts)
        found = {0: GENESIS_HASH} if 0 in wanted else {}
        expected_id, prev_hash, checked = 1, GENESIS_HASH, 0
        for row in stored_audit.chain(connection_of(self._db)):
            entry_id = row["id"]
            try:
                details = json.loads(row["details_json"])
                digest = entry_hash(
                    entry_id, row["at"], row["actor"], row["action"], row["target"], details, row["prev_hash"]
                )
            except (TypeError, ValueError) as exc:
                reason = f"entry {entry_id} cannot be read: {exc}"
                return VerifyResult(False, checked, expected_id - 1 or None, prev_hash, entry_id, reason), found
            reason = None
            if entry_id != expected_id:
                reason = f"entry {entry_id} found where entry {expected_id} belongs: entries are missing or reordered"
            elif row["prev_hash"] != prev_hash:
                reason = f"entry {entry_id} does not link to entry {expected_id - 1}: one of them was changed"
            elif row["hash"] != digest:
                reason = f"entry {entry_id} does not match its hash: it was changed"
            if reason:
                return VerifyResult(False, checked, expected_id - 1 or None, prev_hash, entry_id, reason), found
            expected_id, prev_hash, checked = entry_id + 1, row["hash"], checked + 1
            if entry_id in wanted:
                found[entry_id] = prev_hash
        head_id = expected_id - 1 or None
        return VerifyResult(True, checked, head_id, prev_hash if head_id else None), found
