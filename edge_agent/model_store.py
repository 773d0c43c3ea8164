"""Verified releases on disk and the active version of each model, switched so power loss cannot split them.

Layout under the data folder::

    models/{name}/versions/{version}/model.onnx + release.json   (written in a staging folder, then renamed)
    models/{name}/active.json                                    ({"version": ..., "previous": ...})
    models/{name}/challenger.json                                ({"version": ..., "experiment": {...}})

A version folder appears complete or not at all, and ``active.json`` is replaced atomically
(write temporary, fsync, rename, fsync folder) only after the folder it names is durable: after
a crash at any point the pointer names the old version or the new one, never a partial file.
``previous`` is the last known good version, kept on disk for rollback; older ones are pruned.

A challenger (a director document's experiment) is an installed release loaded beside the active
one; ``challenger.json`` names it so it runs again after a restart. It never becomes active here:
a promotion is a document naming it as the release, which activates it like any other.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from edge_agent.events import AgentEvent, EventSink, log_event
from edge_agent.fault_points import fault_point
from edge_agent.model_loader import FeatureContract, LoadedModel, LoaderLimits
from edge_agent.sandboxed_load import load_checked
from shared.atomic_files import atomic_write, fsync_directory
from shared.director import DirectorRejected, Experiment, RejectRule
from shared.messages import EventKind, ModelState
from shared.release import ReleaseFile
from shared.topics import validate_id

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
RELEASE_FILE = "release.json"
POINTER_FILE = "active.json"
CHALLENGER_FILE = "challenger.json"


@dataclass(frozen=True)
class Challenger:
    """A release run beside the active one, and the experiment that says how."""

    model: LoadedModel
    experiment: Experiment


@dataclass(frozen=True)
class Pointer:
    version: str
    previous: str | None = None
    #: the version passed probation (or is the last known good we fell back to)
    committed: bool = False
    #: set when this version is active because ``rolled_back_from`` failed
    rolled_back_from: str | None = None
    #: the director document that activated ``version`` (or whose release was rolled back from)
    sequence: int | None = None

    def state(self) -> str:
        if self.rolled_back_from:
            return "rolled_back"
        return "committed" if self.committed else "probation"


class ModelStore:
    """The installed releases and the loaded active models (safe to read from any thread)."""

    def __init__(
        self,
        root: Path,
        features: FeatureContract | None = None,
        limits: LoaderLimits | None = None,
        on_event: EventSink = log_event,
    ):
        self.root = root
        self.features = features
        self.limits = limits
        self.on_event = on_event
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        #: replaced as a whole, never mutated, so readers need no lock
        self._active: dict[str, LoadedModel] = {}
        self._challengers: dict[str, Challenger] = {}

    # -- paths ---------------------------------------------------------------------------------------

    def _model_dir(self, name: str) -> Path:
        return self.root / validate_id(name, "model name")

    def _version_dir(self, name: str, version: str) -> Path:
        return self._model_dir(name) / "versions" / validate_id(version, "model version")

    # -- reading -------------------------------------------------------------------------------------

    def model_names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def pointer(self, name: str) -> Pointer | None:
        path = self._model_dir(name) / POINTER_FILE
        if not path.exists():
            return None
        body = json.loads(path.read_bytes())
        return Pointer(
            version=body["version"],
            previous=body.get("previous"),
            committed=bool(body.get("committed", False)),
            rolled_back_from=body.get("rolled_back_from"),
            sequence=body.get("sequence"),
        )

    def installed_versions(self, name: str) -> list[str]:
        versions = self._model_dir(name) / "versions"
        if not versions.is_dir():
            return []
        return sorted(p.name for p in versions.iterdir() if p.is_dir() and not p.name.startswith("."))

    def installed_sha256(self, name: str, version: str) -> str | None:
        """The model hash recorded in an installed release, or None when that version is not installed."""
        path = self._version_dir(name, version) / RELEASE_FILE
        if not path.exists():
            return None
        return ReleaseFile.model_validate_json(path.read_bytes()).model_sha256

    def read_bytes(self, name: str, version: str) -> tuple[bytes, bytes]:
        """The release file and the model as installed."""
        folder = self._version_dir(name, version)
        return (folder / RELEASE_FILE).read_bytes(), (folder / MODEL_FILE).read_bytes()

    def active(self) -> dict[str, LoadedModel]:
        """The models serving now, by name."""
        return self._active

    def challengers(self) -> dict[str, Challenger]:
        """The challengers running beside the active models, by model name."""
        return self._challengers

    def states(self) -> list[ModelState]:
        """What ``up/status`` reports per model."""
        states = []
        for name in self.model_names():
            pointer = self.pointer(name)
            challenger = self._challengers.get(name)
            states.append(
                ModelState(
                    model_name=name,
                    active_version=self._active[name].version if name in self._active else None,
                    installed_versions=self.installed_versions(name),
                    state=pointer.state() if pointer and name in self._active else "none",
                    challenger_version=challenger.model.version if challenger else None,
                    experiment_id=challenger.experiment.experiment_id if challenger else None,
                    experiment_mode=challenger.experiment.mode if challenger else None,
                )
            )
        return states

    # -- writing -------------------------------------------------------------------------------------

    def install(self, release: ReleaseFile, release_bytes: bytes, onnx_bytes: bytes) -> bool:
        """Store a verified release under its version; False when the identical one is already there.

        A version already installed with other bytes is replaced, unless it is active or the last
        known good one: a release is immutable once it serves.
        """
        name, version = release.model_name, release.model_version
        final = self._version_dir(name, version)
        installed = self.installed_sha256(name, version)
        if installed == release.model_sha256:
            return False
        pointer = self.pointer(name)
        challenger = self._challengers.get(name)
        in_use = (pointer.version, pointer.previous) if pointer else ()
        if installed is not None and (version in in_use or (challenger and challenger.model.version == version)):
            raise DirectorRejected(
                RejectRule.ACTIVATE, f"{name} {version} is installed and in use with other bytes ({installed[:12]})"
            )
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.parent / f".{version}.partial-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        for file_name, data in ((MODEL_FILE, onnx_bytes), (RELEASE_FILE, release_bytes)):
            with open(staging / file_name, "wb") as handle:
                fault_point("write")
                handle.write(data)
                handle.flush()
                fault_point("fsync")
                os.fsync(handle.fileno())
        fault_point("fsync")
        fsync_directory(staging)
        if final.exists():
            discarded = final.parent / f".{version}.discarded-{uuid.uuid4().hex[:8]}"
            final.rename(discarded)
            shutil.rmtree(discarded)
        fault_point("rename")
        staging.rename(final)
        fault_point("rename")
        fsync_directory(final.parent)
        return True

    def activate(self, loaded: LoadedModel, sequence: int | None = None) -> Pointer:
        """Make an installed, loaded release the active one, on probation.

        The last known good becomes the current version if it passed probation; if it has not (yet),
        the last known good stays what it was, and only without one is the current version kept.
        """
        name, version = loaded.name, loaded.version
        if self.installed_sha256(name, version) != loaded.model_sha256:
            raise DirectorRejected(RejectRule.ACTIVATE, f"{name} {version} is not installed with these bytes")
        with self._lock:
            current = self.pointer(name)
            if current is not None and current.version == version:
                pointer = current
            else:
                pointer = Pointer(version=version, previous=_last_known_good(current, version), sequence=sequence)
                fault_point("activate")
                self._write_pointer(name, pointer)
            self._active = {**self._active, name: loaded}
        self._prune(name, pointer)
        return pointer

    def rollback(self, name: str, reason: str) -> str | None:
        """Swap back to the last known good version; return it, or None when there is none to go to."""
        pointer = self.pointer(name)
        loaded = self._fall_back(name, pointer, reason) if pointer else None
        if loaded is None:
            return None
        with self._lock:
            self._active = {**self._active, name: loaded}
        return loaded.version

    def _fall_back(self, name: str, pointer: Pointer, reason: str) -> LoadedModel | None:
        if pointer.previous is None:
            return None
        try:
            loaded = self._load_installed(name, pointer.previous)
        except (DirectorRejected, OSError, ValueError) as exc:
            log.error("cannot roll %s back to %s: %s", name, pointer.previous, exc)
            return None
        with self._lock:
            self._write_pointer(
                name,
                Pointer(
                    version=pointer.previous,
                    committed=True,
                    rolled_back_from=pointer.version,
                    sequence=pointer.sequence,
                ),
            )
        self.on_event(
            AgentEvent(
                EventKind.ROLLBACK, name, pointer.previous, pointer.sequence, detail=f"from {pointer.version}: {reason}"
            )
        )
        return loaded

    def commit(self, name: str, version: str) -> bool:
        """Record that the active ``version`` passed probation; False if it is no longer the active one."""
        with self._lock:
            pointer = self.pointer(name)
            if pointer is None or pointer.version != version or pointer.committed:
                return False
            self._write_pointer(
                name, Pointer(version=version, previous=pointer.previous, committed=True, sequence=pointer.sequence)
            )
        return True

    def _write_pointer(self, name: str, pointer: Pointer) -> None:
        body = {
            "version": pointer.version,
            "previous": pointer.previous,
            "committed": pointer.committed,
            "rolled_back_from": pointer.rolled_back_from,
            "sequence": pointer.sequence,
        }
        atomic_write(self._model_dir(name) / POINTER_FILE, json.dumps(body, sort_keys=True).encode())

    # -- challengers ---------------------------------------------------------------------------------

    def _challenger_pointer(self, name: str) -> tuple[str, Experiment] | None:
        path = self._model_dir(name) / CHALLENGER_FILE
        if not path.exists():
            return None
        body = json.loads(path.read_bytes())
        return body["version"], Experiment.model_validate(body["experiment"])

    def set_challenger(self, loaded: LoadedModel, experiment: Experiment) -> None:
        """Run an installed, loaded release beside ``loaded.name``'s active one in ``experiment``."""
        name = loaded.name
        if self.installed_sha256(name, loaded.version) != loaded.model_sha256:
            raise DirectorRejected(RejectRule.ACTIVATE, f"challenger {name} {loaded.version} is not installed")
        body = {"version": loaded.version, "experiment": experiment.model_dump(mode="json")}
        with self._lock:
            atomic_write(self._model_dir(name) / CHALLENGER_FILE, json.dumps(body, sort_keys=True).encode())
            self._challengers = {**self._challengers, name: Challenger(loaded, experiment)}
        pointer = self.pointer(name)
        if pointer is not None:  # a challenger it replaces goes
            self._prune(name, pointer)

    def stop_challenger(self, name: str) -> Challenger | None:
        """Stop ``name``'s challenger (from memory, and from disk unless active or last known good)."""
        path = self._model_dir(name) / CHALLENGER_FILE
        with self._lock:
            stopped = self._challengers.get(name)
            self._challengers = {k: v for k, v in self._challengers.items() if k != name}
            if path.exists():
                path.unlink()
                fsync_directory(path.parent)
        pointer = self.pointer(name)
        if pointer is not None:
            self._prune(name, pointer)
        return stopped

    def _prune(self, name: str, pointer: Pointer) -> None:
        """Remove versions other than the active, last known good and challenger ones.

        Each is first renamed to a hidden name, so a crash mid-delete never leaves a half-deleted
        folder that still looks installed; hidden leftovers are cleared at start.
        """
        challenger = self._challenger_pointer(name)
        keep = {pointer.version, pointer.previous, challenger[0] if challenger else None}
        versions = self._model_dir(name) / "versions"
        for folder in versions.iterdir():
            if folder.name not in keep and not folder.name.startswith("."):
                doomed = versions / f".{folder.name}.pruned-{uuid.uuid4().hex[:8]}"
                folder.rename(doomed)
                shutil.rmtree(doomed, ignore_errors=True)

    # -- start-up ------------------------------------------------------------------------------------

    def _load_installed(self, name: str, version: str) -> LoadedModel:
        release_bytes, onnx_bytes = self.read_bytes(name, version)
        if hashlib.sha256(onnx_bytes).hexdigest() != ReleaseFile.model_validate_json(release_bytes).model_sha256:
            raise DirectorRejected(RejectRule.ONNX_LOAD, f"{name} {version} on disk does not match its release hash")
        return load_checked(onnx_bytes, release_bytes, self.features, self.limits or LoaderLimits())

    def load_active(self) -> dict[str, LoadedModel]:
        """Load every active model with the full checks again (in the capped child, ``load_checked``); one that fails
        falls back to its last known good."""
        self._remove_partials()
        loaded: dict[str, LoadedModel] = {}
        for name in self.model_names():
            pointer = self.pointer(name)
            if pointer is None:
                continue
            try:
                loaded[name] = self._load_installed(name, pointer.version)
            except (DirectorRejected, OSError, ValueError) as exc:
                rule = exc.rule.value if isinstance(exc, DirectorRejected) else RejectRule.ONNX_LOAD.value
                self.on_event(AgentEvent(EventKind.HEALTH, name, pointer.version, rule=rule, detail=str(exc)))
                fallback = self._fall_back(name, pointer, f"active version failed to load: {exc}")
                if fallback is not None:
                    loaded[name] = fallback
        challengers = {name: c for name in loaded if (c := self._load_challenger(name)) is not None}
        with self._lock:
            self._active = loaded
            self._challengers = challengers
        return loaded

    def _load_challenger(self, name: str) -> Challenger | None:
        """The challenger ``name`` ran before the restart; one that no longer loads is reported and not run."""
        named = self._challenger_pointer(name)
        if named is None:
            return None
        version, experiment = named
        try:
            return Challenger(self._load_installed(name, version), experiment)
        except (DirectorRejected, OSError, ValueError) as exc:
            detail = f"challenger failed to load, not run: {exc}"
            self.on_event(AgentEvent(EventKind.HEALTH, name, version, detail=detail))
            return None

    def _remove_partials(self) -> None:
        """Clear staging folders a crash left behind (nothing ever pointed at them)."""
        for name in self.model_names():
            versions = self._model_dir(name) / "versions"
            if versions.is_dir():
                for folder in versions.glob(".*"):
                    shutil.rmtree(folder, ignore_errors=True)


def _last_known_good(current: Pointer | None, new_version: str) -> str | None:
    if current is None:
        return None
    candidates = [current.version] if current.committed else [current.previous, current.version]
    return next((v for v in candidates if v and v != new_version), None)
