"""The checks before an install run in a short-lived child: the director document's signature, TUF, the downloads.

Verifying a signature loads ``cryptography`` (~6-8 MB, mostly its library) and TUF's client loads tuf, urllib3
and securesystemslib's key code (~4 MB), and a process keeps what it imported: a gateway that applied one update
served at about 120 MB instead of 106. So the agent never runs these checks itself. For each new document
``ReleaseUpdater`` starts ``python -m edge_agent.update_fetch`` (subprocess, never fork: the agent has threads),
which applies them in their order — the director checks (``shared.director.verify_director``, fetching rotated
director keys through TUF when a signature does not verify, held off as ``edge_agent.updater`` describes), a TUF
refresh, and for every release the document names: the director's hashes and lengths equal TUF's, the model is
under the size cap before a byte is fetched, the downloads verify against TUF, the release file describes exactly
the model the director names — writes the verified files into a staging folder and exits. The agent then checks
the staged bytes against the document's hashes itself, loads them (``sandboxed_load.load_checked``) and installs.

The child reads one JSON header line and the document from stdin, and writes one JSON line per event as it
happens (the agent relays them: ``download`` comes before the download), then its verdict: the staged files, or
the rule that failed with the model being checked. A child that dies or hangs rejects the document as
``tuf.download``, transient: the agent tries it again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent import fault_points
from edge_agent.director_state import DirectorState
from edge_agent.events import AgentEvent, EventSink
from edge_agent.tuf_client import TufClient
from shared.director import (
    DesiredModel,
    DirectorDocument,
    DirectorRejected,
    RejectRule,
    TargetRef,
    document_digest,
    format_time,
    verify_director,
)
from shared.messages import EventKind
from shared.release import ReleaseFile

if TYPE_CHECKING:
    from tuf.api.metadata import TargetFile

    from edge_agent.tuf_session import TufSession

log = logging.getLogger(__name__)

#: a child still fetching after this long is killed (each TUF request has its own 30 s timeouts)
CHILD_TIMEOUT_SECONDS = 600.0
_STAGED = "staged"


@dataclass(frozen=True)
class FetchRequest:
    """What the child needs to check one document: the gateway, its state folders and what it runs."""

    gateway_id: str
    accepted_sequence: int | None
    now: datetime
    director_dir: Path
    tuf_dir: Path
    cloud_url: str
    api_key: str | None
    max_bytes: int
    key_refresh_interval: timedelta
    key_retry_interval: timedelta
    #: per model, the (version, model sha256) serving now as its active release and as its challenger
    running: dict[str, tuple[str, str]]
    running_challengers: dict[str, tuple[str, str]]
    #: per model and version, the model sha256 of the installed releases: those are not downloaded again
    installed: dict[str, dict[str, str]]
    #: the agent's armed crash-test step (``edge_agent.fault_points``), armed in the child too; None in production
    fault_point: str | None = None

    def to_json(self) -> bytes:
        fields = dataclasses.asdict(self)
        fields.update(
            now=self.now.isoformat(),
            director_dir=str(self.director_dir),
            tuf_dir=str(self.tuf_dir),
            key_refresh_interval=self.key_refresh_interval.total_seconds(),
            key_retry_interval=self.key_retry_interval.total_seconds(),
        )
        return json.dumps(fields).encode()

    @classmethod
    def from_json(cls, line: bytes) -> FetchRequest:
        fields = json.loads(line)
        fields.update(
            now=datetime.fromisoformat(fields["now"]),
            director_dir=Path(fields["director_dir"]),
            tuf_dir=Path(fields["tuf_dir"]),
            key_refresh_interval=timedelta(seconds=fields["key_refresh_interval"]),
            key_retry_interval=timedelta(seconds=fields["key_retry_interval"]),
            running={name: tuple(pair) for name, pair in fields["running"].items()},
            running_challengers={name: tuple(pair) for name, pair in fields["running_challengers"].items()},
        )
        return cls(**fields)

    @property
    def staging_dir(self) -> Path:
        return self.tuf_dir / _STAGED


@dataclass(frozen=True)
class StagedFiles:
    """A release the child fetched and verified; ``model_file`` None: it is installed, read it from the store."""

    release_file: Path
    model_file: Path | None


@dataclass(frozen=True)
class Fetched:
    """The verified document's sequence and, per (model, is-challenger), its staged release; absent: already
    running exactly that release."""

    sequence: int
    staged: dict[tuple[str, bool], StagedFiles]


class FetchRejected(DirectorRejected):
    """A check in the child failed, while checking ``current`` (model, version) of the document ``sequence``."""

    def __init__(self, rejected: DirectorRejected, current: tuple[str, str] | None, sequence: int | None):
        super().__init__(rejected.rule, rejected.detail, rejected.transient)
        self.current = current
        self.sequence = sequence


def fetch_in_child(request: FetchRequest, payload: bytes, on_event: EventSink) -> Fetched:
    """Run the checks in a child, relaying its events; raise ``FetchRejected`` naming the failed rule."""
    shutil.rmtree(request.staging_dir, ignore_errors=True)  # what an attempt a crash cut short left
    child = subprocess.Popen(
        [sys.executable, "-m", __name__],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    timer = threading.Timer(CHILD_TIMEOUT_SECONDS, child.kill)
    timer.start()
    try:
        child.stdin.write(request.to_json() + b"\n" + payload)
        child.stdin.close()
        verdict = None
        for line in child.stdout:
            message = json.loads(line)
            if "event" in message:
                on_event(AgentEvent(**{**message["event"], "kind": EventKind(message["event"]["kind"])}))
            else:
                verdict = message
        stderr = child.stderr.read()
        returncode = child.wait()
    finally:
        timer.cancel()
    if returncode != 0 or verdict is None:
        what = f"killed by signal {-returncode}" if returncode < 0 else f"exited with status {returncode}"
        last = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no error output"]
        raise FetchRejected(
            DirectorRejected(RejectRule.DOWNLOAD, f"the update process {what}: {last[0][:300]}", transient=True),
            None,
            None,
        )
    if not verdict["ok"]:
        rejected = DirectorRejected(RejectRule(verdict["rule"]), verdict["detail"], verdict["transient"])
        raise FetchRejected(rejected, tuple(verdict["current"]) if verdict["current"] else None, verdict["sequence"])
    staged = {
        (item["name"], item["challenger"]): StagedFiles(
            Path(item["release_file"]), Path(item["model_file"]) if item["model_file"] else None
        )
        for item in verdict["staged"]
    }
    return Fetched(verdict["sequence"], staged)


# -- the child ------------------------------------------------------------------------------------------


class _Checks:
    """The checks of one document, in order; the model being checked is ``current``, for a reject event."""

    def __init__(self, request: FetchRequest, emit: EventSink):
        self.request = request
        self.emit = emit
        self.state = DirectorState(request.director_dir)
        self.tuf = TufClient(request.cloud_url, request.tuf_dir, request.api_key)
        self.document: DirectorDocument | None = None
        self.current: tuple[str, str] | None = None
        self.staged: list[dict] = []

    def run(self, payload: bytes, digest: str) -> None:
        session = self._verify(payload)
        sequence = self.document.signed.sequence
        self.request.staging_dir.mkdir(parents=True)
        for name, desired in sorted(self.document.signed.models.items()):
            self.current = (name, desired.version)
            self._stage(session, name, desired, sequence, digest, self.request.running.get(name))
            if desired.challenger is not None:
                self.current = (name, desired.challenger.version)
                self._stage_challenger(session, name, desired, sequence, digest)
        self.current = None

    def _verify(self, payload: bytes) -> TufSession:
        """The director checks, then a TUF refresh; the refresh comes first only to fetch rotated keys."""
        request = self.request
        session: TufSession | None = None
        cached = self.state.cached_keys()
        try:
            self.document = verify_director(
                payload, cached, request.gateway_id, request.accepted_sequence, now=request.now
            )
        except DirectorRejected as rejected:
            if rejected.rule is not RejectRule.DIRECTOR_SIGNATURE:
                raise
            self._may_fetch_keys(rejected)
            session = self.tuf.session()
            raw_keys, keys = session.director_keys()
            if keys.keys() == cached.keys():
                self.state.hold_key_fetches(request.now + request.key_refresh_interval)
                raise
            self.state.cache_keys(raw_keys)
            self.state.hold_key_fetches(None)
            log.info("director keys updated through TUF: %s", ", ".join(k[:12] for k in sorted(keys)))
            self.document = verify_director(
                payload, keys, request.gateway_id, request.accepted_sequence, now=request.now
            )
        return session or self.tuf.session()

    def _may_fetch_keys(self, rejected: DirectorRejected) -> None:
        """Refuse a fetch of the director keys (transient) while they are held off; else hold the next one off.

        Held off for ``key_retry_interval`` before fetching, so a fetch that fails (or a crash during it) is not
        repeated at once; a hold longer than any interval means the clock was set back and holds nothing.
        """
        now = self.request.now
        until = self.state.key_fetches_held_until()
        longest = max(self.request.key_refresh_interval, self.request.key_retry_interval)
        if until is not None and now < until <= now + longest:
            raise DirectorRejected(
                RejectRule.DIRECTOR_SIGNATURE,
                f"{rejected.detail}; the director keys are fetched through TUF again from {format_time(until)} "
                "(the last fetch failed or brought no new key)",
                transient=True,
            ) from rejected
        self.state.hold_key_fetches(now + self.request.key_retry_interval)

    def _stage(
        self,
        session: TufSession,
        name: str,
        desired: TargetRef,
        sequence: int,
        digest: str,
        running: tuple[str, str] | None,
        challenger: bool = False,
    ) -> None:
        """Fetch and verify one release into the staging folder, unless ``running`` is exactly this release."""
        release_info = _agreeing_target(session, desired.release_target, desired.release_sha256, desired.release_length)
        model_info = _agreeing_target(session, desired.model_target, desired.model_sha256, desired.model_length)
        if running == (desired.version, desired.model_sha256):
            return
        if desired.model_length > self.request.max_bytes:  # refused before a byte of it is fetched
            raise DirectorRejected(
                RejectRule.ONNX_SIZE, f"model is {desired.model_length} bytes, the cap is {self.request.max_bytes}"
            )
        kind, detail = (EventKind.CHALLENGER, "downloading") if challenger else (EventKind.DOWNLOAD, "")
        self.emit(AgentEvent(kind, name, desired.version, sequence, detail=detail, document_digest=digest))
        release_bytes = session.download(release_info)
        _check_release(release_bytes, name, desired)
        folder = self.request.staging_dir / f"{len(self.staged)}"
        folder.mkdir()
        (folder / "release.json").write_bytes(release_bytes)
        model_file = None
        if self.request.installed.get(name, {}).get(desired.version) != desired.model_sha256:
            model_file = folder / "model.onnx"
            model_file.write_bytes(session.download(model_info))
        self.staged.append(
            {
                "name": name,
                "challenger": challenger,
                "release_file": str(folder / "release.json"),
                "model_file": model_file and str(model_file),
            }
        )

    def _stage_challenger(self, session: TufSession, name: str, desired: DesiredModel, sequence: int, digest: str):
        if desired.experiment is None:
            raise DirectorRejected(RejectRule.DIRECTOR_FORMAT, f"{name} names a challenger but no experiment")
        running = self.request.running_challengers.get(name)
        self._stage(session, name, desired.challenger, sequence, digest, running, challenger=True)


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


def _check_release(release_bytes: bytes, name: str, desired: TargetRef) -> None:
    """The release file must describe exactly the model the director names."""
    from pydantic import ValidationError

    try:
        release = ReleaseFile.model_validate_json(release_bytes)
    except ValidationError as exc:
        raise DirectorRejected(RejectRule.SCHEMA, f"invalid release file: {str(exc).splitlines()[0]}") from exc
    expected = (name, desired.version, desired.model_target, desired.model_sha256, desired.model_length)
    described = ("model_name", "model_version", "model_target", "model_sha256", "model_length")
    actual = tuple(getattr(release, field) for field in described)
    if actual != expected:
        raise DirectorRejected(RejectRule.SCHEMA, f"release file describes {actual[:3]}, director names {expected[:3]}")


def _write(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    stdin = sys.stdin.buffer
    request = FetchRequest.from_json(stdin.readline())
    fault_points.arm(request.fault_point)
    payload = stdin.read()
    checks = _Checks(request, lambda event: _write({"event": dataclasses.asdict(event)}))
    try:
        checks.run(payload, document_digest(payload))
    except DirectorRejected as rejected:
        sequence = checks.document.signed.sequence if checks.document else None
        _write(
            {
                "ok": False,
                "rule": rejected.rule.value,
                "detail": rejected.detail,
                "transient": rejected.transient,
                "current": checks.current,
                "sequence": sequence,
            }
        )
        return
    _write({"ok": True, "sequence": checks.document.signed.sequence, "staged": checks.staged})


if __name__ == "__main__":
    main()
