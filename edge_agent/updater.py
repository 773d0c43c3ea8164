"""Apply a director document: every check in the order of docs/architecture.md, then atomic activation.

Order: the document verifies with a trusted director key, has not expired, has a sequence above
the last accepted one and names this gateway (``shared.director.verify_director``); TUF refreshes;
for every model the director's hashes and lengths equal TUF's (``repositories.disagree``); the
downloads verify (a model over the size cap is refused before it is fetched); the ONNX file passes
the hardened loader, the release schema and the golden vectors, first in a child process capped in
memory and time (``edge_agent.sandboxed_load``), then in the agent without the static ones. Only when every model of the
document passes is anything installed and activated, so a document is applied whole or not at all.
Any failure emits a ``reject`` event naming the rule and leaves the serving models untouched.

Everything up to the downloads (the director checks, the key fetches, TUF) runs in a short-lived child,
``edge_agent.update_fetch``, so that the agent never imports ``cryptography`` or the TUF client; the agent checks
the staged files against the document's hashes again before it loads them. A child that dies or hangs defers the
document (``tuf.download``, transient).

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
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from edge_agent.config import DEFAULT_KEY_REFRESH_INTERVAL, DEFAULT_KEY_RETRY_INTERVAL
from edge_agent.director_state import DirectorState
from edge_agent.events import AgentEvent, EventSink, log_event
from edge_agent.fault_points import armed, fault_point
from edge_agent.model_loader import FeatureContract, LoadedModel, LoaderLimits
from edge_agent.model_store import ModelStore
from edge_agent.sandboxed_load import load_checked
from edge_agent.tuf_client import TufClient
from edge_agent.update_fetch import FetchRejected, FetchRequest, StagedFiles, fetch_in_child
from shared import strict_json
from shared.director import DirectorDocument, DirectorRejected, Experiment, RejectRule, TargetRef, document_digest
from shared.limits import MAX_SAFE_INT
from shared.messages import EventKind
from shared.release import ReleaseFile

log = logging.getLogger(__name__)


class UpdateResult(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"
    #: rejected for a reason that may pass (the cloud unreachable): worth trying the same document again
    DEFERRED = "deferred"


#: rules that fail for reasons outside the document, so a retry may succeed
TRANSIENT_RULES = frozenset({RejectRule.TUF_REFRESH, RejectRule.DOWNLOAD})


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
        sequence: int | None = None
        current: tuple[str, str] | None = None  # model name and version being checked, for the event
        try:
            fetched = fetch_in_child(self._request(accepted_sequence), payload, self.on_event)
            sequence = fetched.sequence
            # the bytes the child verified: parsing them again here needs no signature check (no cryptography)
            document = DirectorDocument.model_validate_json(payload)
            about = _Document(sequence, digest)
            staged: list[_Staged] = []
            challengers: dict[str, _StagedChallenger] = {}
            for name, desired in sorted(document.signed.models.items()):
                current = (name, desired.version)
                item = self._load_staged(fetched.staged.get((name, False)), name, desired)
                if item is not None:
                    staged.append(item)
                if desired.challenger is not None:
                    current = (name, desired.challenger.version)
                    loaded = self._load_staged(fetched.staged.get((name, True)), name, desired.challenger)
                    challengers[name] = _StagedChallenger(desired.experiment, loaded)
            current = None
            self.state.remember_document(about.sequence, digest)  # before activation: its commit may come at once
            self._activate(staged, about)
            self._switch_challengers(challengers, about)
            fault_point("activate")
        except DirectorRejected as rejected:
            if isinstance(rejected, FetchRejected):
                current, sequence = rejected.current, rejected.sequence
            self._report_reject(rejected, payload, digest, sequence, current)
            transient = rejected.transient or rejected.rule in TRANSIENT_RULES
            return UpdateResult.DEFERRED if transient else UpdateResult.REJECTED
        finally:
            shutil.rmtree(self.tuf.tuf_dir / "staged", ignore_errors=True)
        self.state.accept(sequence, digest)
        self.state.keep_documents({sequence, *self._activating_sequences()})
        log.info("director document %s applied (%d model(s) changed)", sequence, len(staged))
        return UpdateResult.APPLIED

    # -- the checks ----------------------------------------------------------------------------------

    def _request(self, accepted_sequence: int | None) -> FetchRequest:
        """What the update child checks a document against: this gateway, its folders and what it serves."""
        installed = {
            name: {v: sha for v in self.store.installed_versions(name) if (sha := self._intact_sha256(name, v))}
            for name in self.store.model_names()
        }
        return FetchRequest(
            gateway_id=self.gateway_id,
            accepted_sequence=accepted_sequence,
            now=self.clock(),
            director_dir=self.state.folder,
            tuf_dir=self.tuf.tuf_dir,
            cloud_url=self.tuf.cloud_url,
            api_key=self.tuf.api_key,
            max_bytes=self.limits.max_bytes,
            key_refresh_interval=self.key_refresh_interval,
            key_retry_interval=self.key_retry_interval,
            running={name: (m.version, m.model_sha256) for name, m in self.store.active().items()},
            running_challengers={
                name: (c.model.version, c.model.model_sha256) for name, c in self.store.challengers().items()
            },
            installed=installed,
            fault_point=armed(),  # a crash test's ``download`` kills the child, not the agent
        )

    def _intact_sha256(self, name: str, version: str) -> str | None:
        """The installed model's hash when its file still has it (it passed every check then), else None."""
        sha256 = self.store.installed_sha256(name, version)
        onnx_bytes = self.store.read_bytes(name, version)[1] if sha256 else b""
        return sha256 if sha256 and hashlib.sha256(onnx_bytes).hexdigest() == sha256 else None

    def _activating_sequences(self) -> set[int]:
        """Sequences of the documents that activated the releases in use (their commit or rollback is to come)."""
        pointers = (self.store.pointer(name) for name in self.store.model_names())
        return {p.sequence for p in pointers if p is not None and p.sequence is not None}

    def _load_staged(self, files: StagedFiles | None, name: str, desired: TargetRef) -> _Staged | None:
        """A release the child fetched, checked against the document again here and loaded; None: it is running."""
        if files is None:
            return None
        release_bytes = files.release_file.read_bytes()
        if files.model_file is not None:
            onnx_bytes = files.model_file.read_bytes()
        else:  # e.g. rolling back to the last known good: installed, it passed every check then
            onnx_bytes = self.store.read_bytes(name, desired.version)[1]
        for what, data, sha256 in (
            ("release file", release_bytes, desired.release_sha256),
            ("model", onnx_bytes, desired.model_sha256),
        ):
            if hashlib.sha256(data).hexdigest() != sha256:
                raise DirectorRejected(RejectRule.DOWNLOAD, f"{name} {desired.version}: the {what} changed on disk")
        fault_point("verify")
        loaded = load_checked(onnx_bytes, release_bytes, self.features, self.limits)
        return _Staged(loaded.release, release_bytes, onnx_bytes, loaded)

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
        sequence: int | None,
        current: tuple[str, str] | None,
    ) -> None:
        name, version = current or (None, None)
        sequence = sequence if sequence is not None else _claimed_sequence(payload)
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
