"""Signed checkpoints of the audit log, as Certificate Transparency's signed tree heads.

The hash chain (``cloud.audit``) shows an entry changed or removed in the middle, but not the newest entries cut
off its end, nor a row edited with every hash after it recomputed: both leave a chain that holds. A checkpoint is
the cloud's signature, with the keystore's audit key, over the number of entries and the hash of the last one at
a time. Whoever later removes or changes any of those entries changes the head at that count, and without the
key cannot sign a checkpoint that hides it. ``cloud serve`` signs one on a schedule, admins on demand.

A checkpoint signed on demand (``sign_now``: the API, ``admin audit checkpoint``) is audited as
``audit.checkpoint`` with its actor, in the transaction that stores it. The schedule's are routine and are not: each
is signed and timed evidence of its own, and an entry per interval would only leave the log's head never
checkpointed.

Checkpoints live in the database (``audit_checkpoints``, append-only) and can be exported to a file kept
elsewhere: someone holding the data folder can cut the checkpoint table along with the log, but not a copy
they cannot reach. ``verify`` takes such a copy beside the table's own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

from cloud.audit import AuditLog, VerifyResult
from cloud.config import PASSPHRASE_ENV, CloudConfig, configured_actor, key_passphrase
from cloud.data import audit as stored_audit
from cloud.data.connections import connection_of, write_transaction
from cloud.errors import Invalid, Refused
from cloud.observability.metrics import AUDIT_CHAIN_OK
from cloud.releases import keystore
from cloud.storage import iso
from cloud.workers import PeriodicWorker
from shared.canonical import canonical_bytes
from shared.signing import key_id, public_key_hex, sign, verify
from shared.strict_json import loads as strict_loads

log = logging.getLogger(__name__)

#: names what a checkpoint signature covers, so it can never pass for a signature over anything else
CHECKPOINT_TYPE = "iotsphere.audit-checkpoint"
EXPORT_TYPE = "iotsphere.audit-checkpoints"
_HEX64 = r"^[0-9a-f]{64}$"
_EXAMPLE = {
    "count": 42,
    "head_hash": "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c0b2d4f6e8a0c2e4f6a8b0d2f4e6a8c0e",
    "at": "2026-02-06T11:00:00.000000Z",
    "keyid": "3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5e",
    "signature": "q1Yx…base64 Ed25519 signature…==",
}


class CheckpointRefused(Refused):
    """The log does not verify, so no checkpoint is signed: signing it would vouch for the tampering."""


class Checkpoint(BaseModel):
    """One signed head: ``count`` entries whose last one hashes to ``head_hash``, at time ``at``."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    count: int = Field(ge=0, le=2**63 - 1)
    head_hash: str = Field(pattern=_HEX64)
    at: str = Field(max_length=40)
    keyid: str = Field(pattern=_HEX64)
    signature: str = Field(max_length=200)

    def signed_bytes(self) -> bytes:
        body = {"type": CHECKPOINT_TYPE, "count": self.count, "head_hash": self.head_hash, "at": self.at}
        return canonical_bytes({**body, "keyid": self.keyid})

    def describe(self) -> str:
        return f"the checkpoint of {self.at} ({self.count} entries)"


class CheckpointExport(BaseModel):
    """The exported file: every checkpoint and the public key that signed them, enough to verify elsewhere."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": EXPORT_TYPE,
                    "public_keys": ["5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5e3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a"],
                    "checkpoints": [_EXAMPLE],
                }
            ]
        },
    )

    type: str = Field(EXPORT_TYPE, pattern=f"^{EXPORT_TYPE}$")
    #: the audit keys' public halves, the current one first, then those rotated out
    public_keys: list[str] = Field(min_length=1, max_length=100)
    checkpoints: list[Checkpoint]

    @classmethod
    def parse(cls, data: bytes, source: str) -> CheckpointExport:
        """Raise Invalid naming ``source`` for anything but an export of this module."""
        try:
            return cls.model_validate(strict_loads(data))
        except ValueError as exc:  # pydantic's ValidationError is one, as is the JSON decoder's
            raise Invalid(f"{source} is not an export of audit checkpoints: {exc}") from exc


@dataclass(frozen=True)
class CheckpointReport:
    """The chain's own verdict, how many checkpoints were checked, and every way the log fails them."""

    chain: VerifyResult
    checked: int
    newest: Checkpoint | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.problems


class AuditCheckpoints:
    """The ``audit_checkpoints`` table (migration 15): sign, list, verify the log against them."""

    def __init__(self, db: sqlite_utils.Database):
        self._db = db

    def all(self) -> list[Checkpoint]:
        return [Checkpoint(**row) for row in stored_audit.checkpoints(connection_of(self._db))]

    def sign(
        self,
        key: Ed25519PrivateKey,
        trusted: Sequence[Ed25519PublicKey] = (),
        now: datetime | None = None,
        *,
        actor: str | None = None,
    ) -> Checkpoint:
        """Check the log against every checkpoint so far (signed by ``key`` or one of ``trusted``, e.g. audit keys
        rotated out), then sign its head; ``CheckpointRefused`` if it fails. With an ``actor`` (a checkpoint asked
        for) it is audited in the transaction that stores it; without one (the schedule's) it is not."""
        report = self.verify([key.public_key(), *trusted])
        if not report.ok:
            raise CheckpointRefused("; ".join(_reasons(report)))
        unsigned = Checkpoint(
            count=report.chain.checked,
            head_hash=report.chain.head_hash or "0" * 64,
            at=iso(now or datetime.now(UTC)),
            keyid=key_id(key),
            signature="",
        )
        checkpoint = unsigned.model_copy(update={"signature": sign(key, unsigned.signed_bytes())})
        with write_transaction(self._db) as connection:
            stored_audit.add_checkpoint(connection, checkpoint.model_dump())
            if actor is not None:
                details = {"count": checkpoint.count, "head_hash": checkpoint.head_hash, "keyid": checkpoint.keyid}
                AuditLog(self._db).record(actor, "audit.checkpoint", "audit_log", details)
        return checkpoint

    def export(self, public_keys: Sequence[Ed25519PublicKey]) -> CheckpointExport:
        return CheckpointExport(public_keys=[public_key_hex(key) for key in public_keys], checkpoints=self.all())

    def verify(self, public_keys: Sequence[Ed25519PublicKey], kept: Sequence[Checkpoint] = ()) -> CheckpointReport:
        """The chain, then each checkpoint (the table's and ``kept``, an exported copy): signed by one of the audit
        keys, and the log's head after that many entries still what it signed. No keys: no audit key yet."""
        stored = set(self.all())
        missing = [c for c in dict.fromkeys(kept) if c not in stored]
        checkpoints = sorted({*stored, *missing}, key=lambda c: (c.count, c.at))
        chain, heads = AuditLog(self._db).heads(c.count for c in checkpoints)
        problems = []
        if missing:
            problems.append(
                f"{len(missing)} checkpoint(s) of the exported copy are missing from the database (the newest: "
                f"{max(missing, key=lambda c: c.at).describe()}): the checkpoint table was cut"
            )
        problems += _signature_problems(checkpoints, public_keys)
        for checkpoint in checkpoints:
            head = heads.get(checkpoint.count)
            if head is None and chain.ok:
                problems.append(
                    f"the log was truncated: {checkpoint.describe()} signed {checkpoint.count} entries, "
                    f"the log now has {chain.checked}"
                )
            elif head is not None and head != checkpoint.head_hash:
                problems.append(
                    f"entries up to #{checkpoint.count} were rewritten: they no longer hash to the head "
                    f"{checkpoint.describe()} signed ({checkpoint.head_hash[:16]}…, now {head[:16]}…)"
                )
        newest = max(checkpoints, key=lambda c: c.at) if checkpoints else None
        return CheckpointReport(chain, len(checkpoints), newest, problems)


def verifying_keys(keys_dir: Path, passphrase: str | None) -> tuple[list[Ed25519PublicKey], list[str]]:
    """The audit keys to check checkpoints with (the current one first, then those rotated out), and what is
    wrong with them.

    Without the passphrase they are the published ``audit.pub*`` files, which whoever holds the data folder could
    replace along with re-signed checkpoints (an exported copy still catches that: its keys differ). With the
    passphrase the encrypted keys are the authority, and an ``audit.pub`` that differs is reported. A wrong
    passphrase raises ``keystore.WrongPassphrase``.
    """
    try:
        published = keystore.audit_public_keys(keys_dir)
    except keystore.KeystoreError:
        published = []
    if not passphrase or not keystore.key_path(keys_dir, keystore.AUDIT).exists():
        return published, []
    current = keystore.load_private_key(keys_dir, keystore.AUDIT, passphrase)
    actual = [key.public_key() for key in (current, *keystore.retired_audit_keys(keys_dir, passphrase))]
    if not published or public_key_hex(published[0]) != public_key_hex(actual[0]):
        path = keystore.audit_public_key_path(keys_dir)
        return actual, [f"{path} is not the public half of the encrypted audit key: it was replaced or removed"]
    return actual, []


def sign_now(db: sqlite_utils.Database, keys_dir: Path, passphrase: str, *, actor: str | None = None) -> Checkpoint:
    """A checkpoint of the log as it is, with the audit key (created on first use), audited as ``actor`` (default:
    the configured one); ``CheckpointRefused`` if the log fails its checks, ``keystore.KeystoreError`` for a wrong
    passphrase or a replaced ``audit.pub``."""
    key = keystore.audit_key(keys_dir, passphrase)
    trusted, _ = verifying_keys(keys_dir, passphrase)
    return AuditCheckpoints(db).sign(key, trusted, actor=actor or configured_actor())


def _signature_problems(checkpoints: Iterable[Checkpoint], public_keys: Sequence[Ed25519PublicKey]) -> list[str]:
    checkpoints = list(checkpoints)
    if not checkpoints:
        return []
    if not public_keys:
        return [f"{len(checkpoints)} checkpoint(s) cannot be checked: there is no audit public key"]
    trusted = {key_id(key): key for key in public_keys}
    return [
        f"{c.describe()} is not signed by an audit key of this keystore (signer {c.keyid[:16]}…): forged or altered"
        for c in checkpoints
        if c.keyid not in trusted or not verify(trusted[c.keyid], c.signed_bytes(), c.signature)
    ]


def _reasons(report: CheckpointReport) -> list[str]:
    chain = [] if report.chain.ok else [f"audit log broken at entry {report.chain.broken_id}: {report.chain.reason}"]
    return chain + report.problems


def report_lines(report: CheckpointReport) -> list[str]:
    """What ``admin audit verify`` says: every failure first, else what holds."""
    if not report.ok:
        return _reasons(report)
    chain = report.chain
    lines = [
        "The audit log is empty."
        if chain.head_id is None
        else f"{chain.checked} entries verified; head #{chain.head_id} {chain.head_hash}"
    ]
    if report.newest is None:
        lines.append("No signed checkpoint yet: `iotsphere admin audit checkpoint` signs one.")
    else:
        lines.append(f"{report.checked} signed checkpoint(s) hold; the newest is {report.newest.describe()}.")
    return lines


class AuditCheckpointWorker(PeriodicWorker):
    """Signs a checkpoint when ``cloud serve`` starts and every ``CloudConfig.audit_checkpoint_interval_s``.

    Needs the key passphrase (``IOTSPHERE_KEY_PASSPHRASE``); without it, or before ``cloud init``, it stays idle
    and says so. A log that fails its checks is logged as an error at every pass and never signed.
    """

    name = "audit-checkpoints"
    leader_lock = "audit-checkpoints"

    def __init__(self, config: CloudConfig, passphrase: str | None = None, interval: float | None = None):
        super().__init__(config, config.audit_checkpoint_interval_s if interval is None else interval)
        if self.interval <= 0:
            raise ValueError("the audit checkpoint interval must be positive")
        self.passphrase = passphrase or key_passphrase()
        self._key: Ed25519PrivateKey | None = None
        self._trusted: list[Ed25519PublicKey] = []

    def ready(self) -> bool:
        """Load (or create) the audit key up front: a wrong passphrase stops ``cloud serve`` here, clearly."""
        if not self.passphrase:
            log.warning("no %s: the audit log gets no signed checkpoints", PASSPHRASE_ENV)
            return False
        if not keystore.keys_exist(self.config.keys_dir):
            log.warning("no signing keys yet (`iotsphere cloud init`): the audit log gets no signed checkpoints")
            return False
        self._key = keystore.audit_key(self.config.keys_dir, self.passphrase)
        self._trusted, _ = verifying_keys(self.config.keys_dir, self.passphrase)  # keys rotated out still count
        return True

    def step(self, db: sqlite_utils.Database) -> bool:
        assert self._key is not None
        try:
            checkpoint = AuditCheckpoints(db).sign(self._key, self._trusted)
        except CheckpointRefused as exc:
            AUDIT_CHAIN_OK.labels(self.name).set(0)
            log.error("audit log NOT checkpointed, it fails verification: %s", exc)
        else:
            AUDIT_CHAIN_OK.labels(self.name).set(1)
            log.info("audit checkpoint signed: %d entries, head %s", checkpoint.count, checkpoint.head_hash)
        return False
