"""The director document: per-gateway desired state, signed with a director key.

Uptane's director repository, reduced to what a gateway needs: for each model name the release it
should run (and, in an experiment, the challenger and how devices are split). It travels retained on
``down/desired``; the TUF image repository carries the bytes. The checks here are the first four of
the gateway's checks in order (docs/architecture.md): signature, expiry, sequence, gateway id.

Canonical JSON has no floats, so every number in the signed part is an integer.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.canonical import canonical_bytes
from shared.limits import Sequence
from shared.topics import validate_id

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

DIRECTOR_TYPE = "iotsphere-director"
#: the TUF target listing the director public keys gateways trust (through TUF, so they rotate freely)
DIRECTOR_KEYS_TARGET = "director/keys.json"


class RejectRule(StrEnum):
    """Names of the update checks, in the order the edge applies them. Sent in reject events."""

    #: not a director document at all: not JSON, numbers out of range, nesting too deep, fields missing or wrong
    DIRECTOR_FORMAT = "director.format"
    DIRECTOR_SIGNATURE = "director.signature"
    DIRECTOR_EXPIRED = "director.expired"
    DIRECTOR_SEQUENCE = "director.sequence"
    DIRECTOR_GATEWAY = "director.gateway"
    TUF_REFRESH = "tuf.refresh"
    HASH_MISMATCH = "repositories.disagree"
    DOWNLOAD = "tuf.download"
    ONNX_LOAD = "onnx.load"
    ONNX_EXTERNAL_DATA = "onnx.external_data"
    ONNX_DOMAIN = "onnx.domain"
    ONNX_OPERATOR = "onnx.operator"
    ONNX_SIZE = "onnx.size"
    ONNX_OPSET = "onnx.opset"
    SCHEMA = "release.schema"
    GOLDEN = "release.golden"
    #: the first load and golden run (in a capped child process) ran out of memory or time
    ONNX_RESOURCES = "onnx.resources"
    ACTIVATE = "activate"


class DirectorRejected(Exception):
    """A check failed. ``transient``: the same document may pass later (worth trying again on its own)."""

    def __init__(self, rule: RejectRule, detail: str, transient: bool = False):
        super().__init__(f"{rule.value}: {detail}")
        self.rule = rule
        self.detail = detail
        self.transient = transient


def document_digest(payload: bytes) -> str:
    """SHA-256 of a director document's bytes as sent: the name gateways and the cloud both give a document.

    The cloud publishes ``DirectorDocument.to_json()`` (canonical: sorted keys, no whitespace choices), so the digest
    of what a gateway received equals the digest of what the cloud issued, and any other bytes (a forged signature,
    a changed field) have another digest even when they copy the sequence.
    """
    return hashlib.sha256(payload).hexdigest()


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Experiment(_Doc):
    experiment_id: str = Field(min_length=1, max_length=64)
    #: shadow: every device runs both, only the champion acts; split: a stable hash picks the arm
    mode: Literal["shadow", "split"]
    #: share of devices on the challenger arm in split mode, in percent
    challenger_percent: int = Field(0, ge=0, le=100)


class TargetRef(_Doc):
    """A TUF target the gateway must fetch, with the hashes the director expects."""

    version: str = Field(min_length=1, max_length=32)
    #: TUF target path of the release file (JSON) describing the model
    release_target: str
    release_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    release_length: int = Field(gt=0)
    #: TUF target path of the ONNX file
    model_target: str
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    model_length: int = Field(gt=0)


class DesiredModel(TargetRef):
    challenger: TargetRef | None = None
    experiment: Experiment | None = None


class DirectorSigned(_Doc):
    type: Literal["iotsphere-director"] = DIRECTOR_TYPE
    gateway_id: str
    sequence: Sequence
    issued_at: str
    expires_at: str
    models: dict[str, DesiredModel] = Field(default_factory=dict)

    def expires(self) -> datetime:
        return _parse_time(self.expires_at)


class Signature(_Doc):
    keyid: str
    sig: str


class DirectorDocument(_Doc):
    signed: DirectorSigned
    signatures: list[Signature] = Field(min_length=1)

    def to_json(self) -> bytes:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), sort_keys=True).encode()


def format_time(value: datetime) -> str:
    """Second-precision UTC ``YYYY-MM-DDTHH:MM:SSZ``, as TUF writes its expiry."""
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _signed_bytes(signed: DirectorSigned) -> bytes:
    return canonical_bytes(signed.model_dump(mode="json", exclude_none=True))


def sign_director(signed: DirectorSigned, keys: list[Ed25519PrivateKey]) -> DirectorDocument:
    from shared.signing import key_id, sign

    validate_id(signed.gateway_id, "gateway id")
    message = _signed_bytes(signed)
    return DirectorDocument(signed=signed, signatures=[Signature(keyid=key_id(k), sig=sign(k, message)) for k in keys])


def verify_director(
    payload: bytes | str | dict[str, Any],
    trusted_keys: dict[str, Ed25519PublicKey],
    gateway_id: str,
    last_sequence: int | None,
    now: datetime | None = None,
    threshold: int = 1,
) -> DirectorDocument:
    """Apply the director checks in their binding order; raise DirectorRejected naming the rule.

    A document whose sequence equals ``last_sequence`` fails the sequence rule here; callers
    that want a redelivered retained copy to be a no-op compare it with the accepted one first.
    """
    # cryptography (~8 MB, mostly its library) loads with the first signature checked: a gateway that only
    # serves never verifies one
    from shared.signing import verify

    try:
        if isinstance(payload, dict):
            document = DirectorDocument.model_validate(payload)
        else:
            document = DirectorDocument.model_validate_json(payload)
        expires = document.signed.expires()
    except ValidationError as exc:
        raise DirectorRejected(RejectRule.DIRECTOR_FORMAT, _first_error(exc)) from exc
    except ValueError as exc:
        raise DirectorRejected(RejectRule.DIRECTOR_FORMAT, str(exc).splitlines()[0]) from exc

    message = _signed_bytes(document.signed)
    valid_keyids = {
        s.keyid
        for s in document.signatures
        if s.keyid in trusted_keys and verify(trusted_keys[s.keyid], message, s.sig)
    }
    if len(valid_keyids) < threshold:
        raise DirectorRejected(
            RejectRule.DIRECTOR_SIGNATURE,
            f"{len(valid_keyids)} valid signature(s) from trusted director keys, {threshold} required",
        )
    now = now or datetime.now(UTC)
    if expires <= now:
        raise DirectorRejected(RejectRule.DIRECTOR_EXPIRED, f"expired at {document.signed.expires_at}")
    if last_sequence is not None and document.signed.sequence <= last_sequence:
        raise DirectorRejected(
            RejectRule.DIRECTOR_SEQUENCE,
            f"sequence {document.signed.sequence} is not above the accepted {last_sequence}",
        )
    if document.signed.gateway_id != gateway_id:
        raise DirectorRejected(
            RejectRule.DIRECTOR_GATEWAY, f"document is for {document.signed.gateway_id!r}, not {gateway_id!r}"
        )
    return document


def _first_error(exc: ValidationError) -> str:
    """Where the document is wrong and how, e.g. ``signed.sequence: Input should be less than or equal to ...``."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "document"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"[:500]


def director_keys_document(keys: list[Ed25519PrivateKey | Ed25519PublicKey]) -> bytes:
    """The ``director/keys.json`` target: a JSON list of ``{"keyid", "public_key_hex"}``.

    Listing several lets a new director key be trusted before the old one stops signing.
    """
    from shared.signing import key_id, public_key_hex

    entries = [{"keyid": key_id(key), "public_key_hex": public_key_hex(key)} for key in keys]
    return json.dumps(entries, indent=1, sort_keys=True).encode()


def parse_director_keys(document: bytes) -> dict[str, Ed25519PublicKey]:
    """Trusted director keys by key id; raise ValueError if an entry's key id does not match its key."""
    from shared.signing import key_id, load_public_key_hex

    keys: dict[str, Ed25519PublicKey] = {}
    for entry in json.loads(document):
        public = load_public_key_hex(entry["public_key_hex"])
        if key_id(public) != entry["keyid"]:
            raise ValueError(f"director key id {entry['keyid']} does not match its public key")
        keys[entry["keyid"]] = public
    return keys
