"""Apply a director document: every check in the order of docs/architecture.md, then atomic activation.

Order: the document verifies with a trusted director key, has not expired, has a sequence above
the last accepted one and names this gateway (``shared.director.verify_director``); TUF refreshes;
for every model the director's hashes and lengths equal TUF's (``repositories.disagree``); the
downloads verify (a model over the size cap is refused before it is fetched); the ONNX file passes
the hardened loader, the release schema and the golden vectors, first in a child process capped in
memory and time (``edge_agent.sandboxed_load``), then in the agent without the static ones. Only when every model of the
document passes is anything installed and activated, so a document is applied whole or not at all.
Any failure emits a ``reject`` event naming the rule and leaves the serving models untouched.

A model's challenger (an experiment) passes the same checks and is installed with the document; it
then runs beside the active release (``edge_agent.serving``). A document that names no challenger for
a model stops the one it had. Challenger steps are reported as ``challenger`` events, so the cloud's
deployment state of the model, built from the other kinds, follows the active release only.

Director keys are trusted through TUF: the ``director/keys.json`` target, cached on disk. When a
signature does not verify with the cached keys, the keys are fetched again through TUF first, so
a rotated director key is picked up without re-provisioning. Anyone who can publish on the gateway's
``down/desired`` can send documents with bad signatures, so a fetch that brings no new keys holds the next one
off for ``key_refresh_interval`` (default 10 minutes), and one that fails for ``key_retry_interval`` (the agent's
``update_retry``, default 1 minute); the time is kept on disk, so restarts do not reset it. A flood of forged
documents thus costs the cloud at most one TUF refresh per gateway per interval (one more per real rotation
within it), and one a minute while the cloud fails to answer. A bad signature while fetches are held off is
rejected as ``DEFERRED`` (it may verify with keys not fetched yet), and the agent tries it again every
``update_retry``: a real key rotation gets through within the interval plus one retry (11 minutes by default)
after the first document signed with the new key, however many forged documents came before it, and at once
when none did. (Whoever can
publish retained on the topic can also replace the genuine document there: keeping that to the cloud is the
broker ACL's job, not the agent's.)

Every event about a document names it by its digest (``shared.director.document_digest``, SHA-256 of the bytes
received) besides its sequence; a malformed document (not JSON, numbers out of range, nested too deep) is
rejected like any other, with ``director.format``, its digest, and the sequence it claims only when that is a
valid one. ``commit`` and ``rollback`` name the document that activated the release: the digests of the
documents that activated the releases now on disk are kept with the accepted one (``DirectorState``), and the
agent adds them to those events (``document_digest_of``).

The accepted sequence is persisted only after the whole document was applied; a redelivery of
the accepted document (same bytes) is a no-op. A crash mid-install therefore leaves the document
unaccepted, and its redelivery after the restart resumes the install (``edge_agent.fault_points``
kills installs at each step in tests). A rejected document is tried again when it is delivered
again (the retained copy comes back on every reconnect); one rejected only because the cloud could
not be reached is ``DEFERRED``, and the agent retries it on its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from edge_agent.events import AgentEvent, EventSink, log_event
from edge_agent.fault_points import fault_point
from edge_agent.model_loader import FeatureContract, LoadedModel, LoaderLimits
from edge_agent.model_store import ModelStore
from edge_agent.sandboxed_load import load_checked
from edge_agent.tuf_client import TufClient
from shared import strict_json
from shared.atomic_files import atomic_write
from shared.director import (
    DesiredModel,
    DirectorDocument,
    DirectorRejected,
    Experiment,
    RejectRule,
    TargetRef,
    document_digest,
    format_time,
    parse_director_keys,
    verify_director,
)
from shared.limits import MAX_SAFE_INT
from shared.messages import EventKind
from shared.release import ReleaseFile

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from tuf.api.metadata import TargetFile

    from edge_agent.tuf_session import TufSession

log = logging.getLogger(__name__)


class UpdateResult(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"
    #: rejected for a reason that may pass (the cloud unreachable): worth trying the same document again
    DEFERRED = "deferred"


#: rules that fail for reasons outside the document, so a retry may succeed
TRANSIENT_RULES = frozenset({RejectRule.TUF_REFRESH, RejectRule.DOWNLOAD})
#: after a fetch of the director keys that a bad signature triggered and that brought none new: no other until then
DEFAULT_KEY_REFRESH_INTERVAL = timedelta(minutes=10)
#: the same after such a fetch failed (the cloud unreachable)
DEFAULT_KEY_RETRY_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class _Document:
    """The document being applied, as its events name it."""

    sequence: int
    digest: str

    def event(self, kind: EventKind, name: str, version: str, detail: str = "") -> AgentEvent:
        return AgentEvent(kind, name, version, self.sequence, detail=detail, document_digest=self.digest)


@dataclass(frozen=True)
class _Staged:
    release: ReleaseFile
    release_bytes: bytes
    onnx_bytes: bytes
    loaded: LoadedModel


@dataclass(frozen=True)
class _StagedChallenger:
    experiment: Experiment
    #: None: the challenger already running is this release
    staged: _Staged | None


class DirectorState:
    """On disk: the last accepted document's sequence and hash, the digests of the documents that activated
    the releases in use, the cached director keys and when they were last fetched."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._accepted = folder / "accepted.json"
        self._keys = folder / "keys.json"
        self._documents = folder / "documents.json"
        self._key_hold = folder / "key-fetches-held.json"

    def accepted(self) -> tuple[int | None, str | None]:
        if not self._accepted.exists():
            return None, None
        body = json.loads(self._accepted.read_bytes())
        return int(body["sequence"]), body["sha256"]

    def accept(self, sequence: int, sha256: str) -> None:
        atomic_write(self._accepted, json.dumps({"sequence": sequence, "sha256": sha256}).encode())

    def cached_keys(self) -> dict[str, Ed25519PublicKey]:
        """Keys from the last TUF fetch; none if never fetched or unreadable (they are fetched again)."""
        try:
            return parse_director_keys(self._keys.read_bytes())
        except (OSError, ValueError, TypeError, KeyError):
            return {}

    def cache_keys(self, data: bytes) -> None:
        atomic_write(self._keys, data)

    def documents(self) -> dict[int, str]:
        """Digests of verified documents by sequence (only documents that verified are kept: sequences are theirs)."""
        if not self._documents.exists():
            return {}
        return {int(sequence): digest for sequence, digest in json.loads(self._documents.read_bytes()).items()}

    def remember_document(self, sequence: int, digest: str) -> None:
        atomic_write(self._documents, json.dumps({**self.documents(), sequence: digest}, sort_keys=True).encode())

    def keep_documents(self, sequences: Iterable[int]) -> None:
        """Forget every remembered document but these (those still naming a release in use)."""
        wanted = set(sequences)
        kept = {sequence: digest for sequence, digest in self.documents().items() if sequence in wanted}
        atomic_write(self._documents, json.dumps(kept, sort_keys=True).encode())

    def key_fetches_held_until(self) -> datetime | None:
        """Until when a bad signature may not make the agent fetch the director keys through TUF again."""
        try:
            return datetime.fromisoformat(json.loads(self._key_hold.read_bytes())["until"])
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def hold_key_fetches(self, until: datetime | None) -> None:
        """Hold key fetches off until then; None: the last fetch brought new keys and holds nothing off."""
        if until is None:
            self._key_hold.unlink(missing_ok=True)
        else:
            atomic_write(self._key_hold, json.dumps({"until": until.isoformat()}).encode())


class ReleaseUpdater:
    """Turns director documents into active models; one document at a time (call from one thread)."""

    def __init__(
        self,
        gateway_id: str,
        state: DirectorState,
        store: ModelStore,
        tuf: TufClient,
        features: FeatureContract | None = None,
        limits: LoaderLimits | None = None,
        on_event: EventSink = log_event,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        key_refresh_interval: timedelta = DEFAULT_KEY_REFRESH_INTERVAL,
        key_retry_interval: timedelta = DEFAULT_KEY_RETRY_INTERVAL,
    ):
        self.gateway_id = gateway_id
        self.state = state
        self.store = store
        self.tuf = tuf
        self.features = features
        self.limits = limits or LoaderLimits()
        self.on_event = on_event
        self.clock = clock
        self.key_refresh_interval = key_refresh_interval
        self.key_retry_interval = key_retry_interval

    @property
    def accepted_sequence(self) -> int | None:
        return self.state.accepted()[0]

    def document_digest_of(self, event: AgentEvent) -> AgentEvent:
        """``event`` naming its document by digest too, when it names only the sequence of one applied here.

        Commit and rollback events come from probation and the model store, which know the sequence of the
        document that activated the release; its digest was kept when it was applied.
        """
        if event.document_digest is not None or event.director_sequence is None:
            return event
        digest = self.state.documents().get(event.director_sequence)
        return replace(event, document_digest=digest) if digest else event

    def handle(self, payload: bytes) -> UpdateResult:
        """Check and apply one ``down/desired`` payload; never raises for a bad document."""
        digest = document_digest(payload)
        accepted_sequence, accepted_digest = self.state.accepted()
        if digest == accepted_digest:
            log.debug("director document %s redelivered: already applied", accepted_sequence)
            return UpdateResult.UNCHANGED
        document: DirectorDocument | None = None
        current: tuple[str, str] | None = None  # model name and version being checked, for the event
        try:
            document, session = self._verify(payload, accepted_sequence)
            about = _Document(document.signed.sequence, digest)
            staged: list[_Staged] = []
            challengers: dict[str, _StagedChallenger] = {}
            for name, desired in sorted(document.signed.models.items()):
                current = (name, desired.version)
                item = self._stage(session, name, desired, about, self.store.active().get(name))
                if item is not None:
                    staged.append(item)
                if desired.challenger is not None:
                    current = (name, desired.challenger.version)
                    challengers[name] = self._stage_challenger(session, name, desired, about)
            current = None
            self.state.remember_document(about.sequence, digest)  # before activation: its commit may come at once
            self._activate(staged, about)
            self._switch_challengers(challengers, about)
            fault_point("activate")
        except DirectorRejected as rejected:
            self._report_reject(rejected, payload, digest, document, current)
            transient = rejected.transient or rejected.rule in TRANSIENT_RULES
            return UpdateResult.DEFERRED if transient else UpdateResult.REJECTED
        self.state.accept(document.signed.sequence, digest)
        self.state.keep_documents({document.signed.sequence, *self._activating_sequences()})
        log.info("director document %s applied (%d model(s) changed)", document.signed.sequence, len(staged))
        return UpdateResult.APPLIED

    # -- the checks ----------------------------------------------------------------------------------

    def _activating_sequences(self) -> set[int]:
        """Sequences of the documents that activated the releases in use (their commit or rollback is to come)."""
        pointers = (self.store.pointer(name) for name in self.store.model_names())
        return {p.sequence for p in pointers if p is not None and p.sequence is not None}

    def _verify(self, payload: bytes, accepted_sequence: int | None) -> tuple[DirectorDocument, TufSession]:
        """The director checks, then a TUF refresh; the refresh comes first only to fetch rotated keys."""
        session: TufSession | None = None
        cached = self.state.cached_keys()
        try:
            document = verify_director(payload, cached, self.gateway_id, accepted_sequence, now=self.clock())
        except DirectorRejected as rejected:
            if rejected.rule is not RejectRule.DIRECTOR_SIGNATURE:
                raise
            self._may_fetch_keys(rejected)
            session = self.tuf.session()
            raw_keys, keys = session.director_keys()
            if keys.keys() == cached.keys():
                self.state.hold_key_fetches(self.clock() + self.key_refresh_interval)
                raise
            self.state.cache_keys(raw_keys)
            self.state.hold_key_fetches(None)
            log.info("director keys updated through TUF: %s", ", ".join(k[:12] for k in sorted(keys)))
            document = verify_director(payload, keys, self.gateway_id, accepted_sequence, now=self.clock())
        return document, session or self.tuf.session()

    def _may_fetch_keys(self, rejected: DirectorRejected) -> None:
        """Refuse a fetch of the director keys (transient) while they are held off; else hold the next one off.

        Held off for ``key_retry_interval`` before fetching, so a fetch that fails (or a crash during it) is not
        repeated at once; a hold longer than any interval means the clock was set back and holds nothing.
        """
        now = self.clock()
        until = self.state.key_fetches_held_until()
        longest = max(self.key_refresh_interval, self.key_retry_interval)
        if until is not None and now < until <= now + longest:
            raise DirectorRejected(
                RejectRule.DIRECTOR_SIGNATURE,
                f"{rejected.detail}; the director keys are fetched through TUF again from {format_time(until)} "
                "(the last fetch failed or brought no new key)",
                transient=True,
            ) from rejected
        self.state.hold_key_fetches(now + self.key_retry_interval)

    def _stage(
        self,
        session: TufSession,
        name: str,
        desired: TargetRef,
        about: _Document,
        running: LoadedModel | None,
        challenger: bool = False,
    ) -> _Staged | None:
        """Everything up to activation for one release; None when ``running`` is exactly this release."""
        release_info = self._agreeing_target(
            session, desired.release_target, desired.release_sha256, desired.release_length
        )
        model_info = self._agreeing_target(session, desired.model_target, desired.model_sha256, desired.model_length)
        if running is not None and running.version == desired.version and running.model_sha256 == desired.model_sha256:
            return None
        if desired.model_length > self.limits.max_bytes:  # refused before a byte of it is fetched
            raise DirectorRejected(
                RejectRule.ONNX_SIZE, f"model is {desired.model_length} bytes, the cap is {self.limits.max_bytes}"
            )
        if challenger:
            self.on_event(about.event(EventKind.CHALLENGER, name, desired.version, detail="downloading"))
        else:
            self.on_event(about.event(EventKind.DOWNLOAD, name, desired.version))
        release_bytes = session.download(release_info)
        release = self._release(release_bytes, name, desired)
        onnx_bytes = self._installed_bytes(name, desired)  # e.g. rolling back to the last known good
        if onnx_bytes is None:
            onnx_bytes = session.download(model_info)
            fault_point("verify")
        loaded = load_checked(onnx_bytes, release_bytes, self.features, self.limits)
        return _Staged(release, release_bytes, onnx_bytes, loaded)

    def _stage_challenger(
        self, session: TufSession, name: str, desired: DesiredModel, about: _Document
    ) -> _StagedChallenger:
        if desired.experiment is None:
            raise DirectorRejected(RejectRule.DIRECTOR_FORMAT, f"{name} names a challenger but no experiment")
        running = self.store.challengers().get(name)
        staged = self._stage(
            session, name, desired.challenger, about, running.model if running else None, challenger=True
        )
        return _StagedChallenger(desired.experiment, staged)

    def _installed_bytes(self, name: str, desired: TargetRef) -> bytes | None:
        """The model from disk when exactly this release is installed (it passed every check then), else None."""
        if self.store.installed_sha256(name, desired.version) != desired.model_sha256:
            return None
        onnx_bytes = self.store.read_bytes(name, desired.version)[1]
        return onnx_bytes if hashlib.sha256(onnx_bytes).hexdigest() == desired.model_sha256 else None

    @staticmethod
    def _agreeing_target(session: TufSession, path: str, sha256: str, length: int) -> TargetFile:
        """TUF's description of ``path``, which must equal the director's (Uptane: both repositories agree)."""
        info = session.target_info(path)
        if info is None:
            raise DirectorRejected(RejectRule.HASH_MISMATCH, f"{path} is not a TUF target")
        if info.hashes.get("sha256") != sha256 or info.length != length:
            raise DirectorRejected(
                RejectRule.HASH_MISMATCH,
                f"{path}: director says sha256 {sha256[:12]}… length {length}, "
                f"TUF says sha256 {info.hashes.get('sha256', '?')[:12]}… length {info.length}",
            )
        return info

    @staticmethod
    def _release(release_bytes: bytes, name: str, desired: TargetRef) -> ReleaseFile:
        """The release file must describe exactly the model the director names."""
        try:
            release = ReleaseFile.model_validate_json(release_bytes)
        except ValidationError as exc:
            raise DirectorRejected(RejectRule.SCHEMA, f"invalid release file: {str(exc).splitlines()[0]}") from exc
        expected = (name, desired.version, desired.model_target, desired.model_sha256, desired.model_length)
        actual = (
            release.model_name,
            release.model_version,
            release.model_target,
            release.model_sha256,
            release.model_length,
        )
        if actual != expected:
            raise DirectorRejected(
                RejectRule.SCHEMA, f"release file describes {actual[:3]}, director names {expected[:3]}"
            )
        return release

    # -- activation and reporting --------------------------------------------------------------------

    def _activate(self, staged: list[_Staged], about: _Document) -> None:
        for item in staged:
            name, version = item.release.model_name, item.release.model_version
            try:
                if self.store.install(item.release, item.release_bytes, item.onnx_bytes):
                    self.on_event(about.event(EventKind.INSTALL, name, version))
                pointer = self.store.activate(item.loaded, about.sequence)
            except OSError as exc:
                raise DirectorRejected(RejectRule.ACTIVATE, f"{name} {version}: {exc}") from exc
            detail = f"previous {pointer.previous}" if pointer.previous else "first version"
            self.on_event(about.event(EventKind.ACTIVATE, name, version, detail=detail))

    def _switch_challengers(self, challengers: dict[str, _StagedChallenger], about: _Document) -> None:
        """Start or change the challengers the document names; stop those it no longer names."""
        running = self.store.challengers()
        for name, item in challengers.items():
            before = running.get(name)
            loaded = item.staged.loaded if item.staged else before.model
            if item.staged is None and before.experiment == item.experiment:
                continue
            try:
                if item.staged is not None:
                    self.store.install(item.staged.release, item.staged.release_bytes, item.staged.onnx_bytes)
                self.store.set_challenger(loaded, item.experiment)
            except OSError as exc:
                raise DirectorRejected(RejectRule.ACTIVATE, f"challenger {name} {loaded.version}: {exc}") from exc
            experiment = item.experiment
            share = f" {experiment.challenger_percent}%" if experiment.mode == "split" else ""
            detail = f"started: experiment {experiment.experiment_id} {experiment.mode}{share}"
            self.on_event(about.event(EventKind.CHALLENGER, name, loaded.version, detail=detail))
        for name in sorted(set(running) - set(challengers)):
            stopped = self.store.stop_challenger(name)
            if stopped is not None:
                detail = f"stopped: experiment {stopped.experiment.experiment_id}"
                self.on_event(about.event(EventKind.CHALLENGER, name, stopped.model.version, detail=detail))

    def _report_reject(
        self,
        rejected: DirectorRejected,
        payload: bytes,
        digest: str,
        document: DirectorDocument | None,
        current: tuple[str, str] | None,
    ) -> None:
        name, version = current or (None, None)
        sequence = document.signed.sequence if document else _claimed_sequence(payload)
        rule, detail = rejected.rule.value, rejected.detail
        self.on_event(AgentEvent(EventKind.REJECT, name, version, sequence, rule, detail, document_digest=digest))


def _claimed_sequence(payload: bytes) -> int | None:
    """The sequence an unverified document claims, only to label its reject event: None unless a valid one.

    Strict JSON, so ``1e400``, ``NaN`` and nesting deep enough to exhaust the stack are ``ValueError`` here too.
    """
    try:
        claimed = strict_json.loads(payload)["signed"]["sequence"]
    except (ValueError, TypeError, KeyError):
        return None
    return claimed if type(claimed) is int and 1 <= claimed <= MAX_SAFE_INT else None
