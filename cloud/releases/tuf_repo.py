"""The image repository: a TUF repository on disk that gateways fetch over HTTP with python-tuf's ngclient.

Layout under ``CloudConfig.tuf_dir`` is what ngclient asks a server for with consistent snapshots:
``metadata/{N}.root.json``, ``metadata/timestamp.json``, ``metadata/{V}.snapshot.json``,
``metadata/{V}.targets.json`` and hash-prefixed ``targets/<dir>/{sha256}.<name>``. Every file is
new-named or replaced atomically, and ``timestamp.json`` is written last: the repository a reader
sees is whatever the timestamp points to, so a crash part-way through leaves the previous
repository intact (the orphaned new files are overwritten by the next attempt).

Version bumps, signing, snapshot and timestamp bookkeeping come from ``tuf.repository.Repository``;
this module only stores metadata and applies our expiry policy.
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import ValidationError
from securesystemslib.signer import Signer
from tuf.api.exceptions import LengthOrHashMismatchError
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.repository import Repository

from cloud.config import CloudConfig
from cloud.errors import Refused
from cloud.releases import keystore
from shared.atomic_files import atomic_write
from shared.director import DIRECTOR_KEYS_TARGET, director_keys_document
from shared.private_files import private_data_dir
from shared.release import ReleaseFile, model_target_path, release_target_path
from shared.topics import validate_id

_ROLE_CLASSES = {Root.type: Root, Targets.type: Targets, Snapshot.type: Snapshot, Timestamp.type: Timestamp}


class ImageRepositoryError(Refused):
    """The repository cannot do what was asked; the message says why."""


class NotInitialized(ImageRepositoryError):
    """No repository yet: `iotsphere cloud init` has not run."""


class ReleaseRefused(ImageRepositoryError):
    """The release does not match its ONNX file, or would change an already published version."""


class TargetMismatch(ImageRepositoryError):
    """A target file on disk is missing or differs from what the signed targets metadata lists for it."""


@dataclass(frozen=True)
class ExpiryPolicy:
    """How long each role's metadata stays valid after signing.

    The timestamp is short so a frozen repository is noticed within a day; it is re-signed by
    the publisher worker (``renew_expiring``). Root is long-lived because its key may be offline.
    """

    root: timedelta = timedelta(days=365)
    targets: timedelta = timedelta(days=30)
    snapshot: timedelta = timedelta(days=7)
    timestamp: timedelta = timedelta(days=1)

    def __post_init__(self) -> None:
        for role in ("root", "targets", "snapshot", "timestamp"):
            if self.lifetime(role) <= timedelta(0):
                raise ValueError(f"the {role} metadata lifetime must be positive")

    def lifetime(self, role: str) -> timedelta:
        return getattr(self, role)


@dataclass(frozen=True)
class PublishedRelease:
    release: ReleaseFile
    release_target: TargetFile
    model_target: TargetFile
    #: version of targets metadata that lists the release
    targets_version: int
    #: True when the identical release was already in the repository (nothing was re-signed)
    already_published: bool = False


def sha256_of(target: TargetFile) -> str:
    return target.hashes["sha256"]


class DiskRepository(Repository):
    """TUF metadata kept as files; ``signers`` is needed only to write (reading needs no key)."""

    def __init__(
        self,
        tuf_dir: Path,
        signers: dict[str, Signer] | None = None,
        policy: ExpiryPolicy | None = None,
        outgoing_root: Signer | None = None,
    ) -> None:
        self.metadata_dir = tuf_dir / "metadata"
        self.targets_dir = tuf_dir / "targets"
        self.signers = signers or {}
        self.policy = policy or ExpiryPolicy()
        #: during a root key rotation, the replaced root key also signs the new root (TUF's rule)
        self.outgoing_root = outgoing_root
        #: latest metadata per role, including versions written during this edit but not yet committed
        self._current: dict[str, Metadata] = {}

    # -- storage -------------------------------------------------------------------------------------

    def _load(self, role: str) -> Metadata:
        if role == Root.type:
            versions = [int(p.name.split(".")[0]) for p in self.metadata_dir.glob("*.root.json")]
            if not versions:
                return self._new(role)
            return Metadata.from_file(str(self.metadata_dir / f"{max(versions)}.root.json"))
        if role == Timestamp.type:
            path = self.metadata_dir / "timestamp.json"
            return Metadata.from_file(str(path)) if path.exists() else self._new(role)
        if not (self.metadata_dir / "timestamp.json").exists():
            return self._new(role)
        # follow the committed chain: timestamp → snapshot version → targets version
        if role == Snapshot.type:
            version = self.open(Timestamp.type).signed.snapshot_meta.version
        else:
            version = self.open(Snapshot.type).signed.meta[f"{role}.json"].version
        return Metadata.from_file(str(self.metadata_dir / f"{version}.{role}.json"))

    @staticmethod
    def _new(role: str) -> Metadata:
        metadata = Metadata(_ROLE_CLASSES[role]())
        metadata.signed.version = 0  # close() bumps it to 1
        return metadata

    def _file_names(self, role: str, version: int) -> list[str]:
        if role == Timestamp.type:
            return ["timestamp.json"]
        if role == Root.type:
            # versioned roots are what ngclient walks; root.json is the latest, for provisioning gateways
            return [f"{version}.root.json", "root.json"]
        return [f"{version}.{role}.json"]

    # -- tuf.repository.Repository -------------------------------------------------------------------

    def open(self, role: str) -> Metadata:
        if role not in self._current:
            self._current[role] = self._load(role)
        return copy.deepcopy(self._current[role])

    def close(self, role: str, md: Metadata) -> None:
        """Bump version and expiry, sign, check the signature against root, write."""
        signer = self.signers.get(role)
        if signer is None:
            raise ImageRepositoryError(f"the {role} key is needed to sign {role} metadata")
        md.signed.version += 1
        md.signed.expires = datetime.now(UTC) + self.policy.lifetime(role)
        md.sign(signer, append=False)
        if role == Root.type and self.outgoing_root is not None:
            md.sign(self.outgoing_root, append=True)
        if role == Root.type:
            previous = self.root() if self.root().version > 0 else None
            verified = md.signed.get_root_verification_result(previous, md.signed_bytes, md.signatures)
        else:
            verified = self.root().get_verification_result(role, md.signed_bytes, md.signatures)
        if not verified:
            raise ImageRepositoryError(f"{role} metadata v{md.signed.version} does not verify against root")
        data = md.to_bytes()
        for name in self._file_names(role, md.signed.version):
            atomic_write(self.metadata_dir / name, data)
        self._current[role] = copy.deepcopy(md)

    @property
    def targets_infos(self) -> dict[str, MetaFile]:
        return {"targets.json": MetaFile(self.open(Targets.type).signed.version)}

    @property
    def snapshot_info(self) -> MetaFile:
        return MetaFile(self.open(Snapshot.type).signed.version)

    # -- targets -------------------------------------------------------------------------------------

    def store_target(self, path: str, data: bytes) -> TargetFile:
        """Write the target's bytes under their hash-prefixed name and return its TUF description."""
        target = TargetFile.from_data(path, data)
        for prefixed in target.get_prefixed_paths():
            atomic_write(self.targets_dir / prefixed, data)
        return target


def is_initialized(config: CloudConfig) -> bool:
    return config.has_tuf_repository


def require_initialized(config: CloudConfig) -> None:
    if not is_initialized(config):
        raise NotInitialized(f"no TUF repository in {config.tuf_dir}: run `iotsphere cloud init` first")


@contextmanager
def exclusive(config: CloudConfig) -> Iterator[None]:
    """One writer at a time (CLI, API and publisher may run side by side), in the private data folder."""
    private_data_dir(config.data_dir)
    with open(config.data_dir / ".tuf.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def online_signers(config: CloudConfig, passphrase: str, roles: tuple[str, ...]) -> dict[str, Signer]:
    return {role: keystore.tuf_signer(config.keys_dir, role, passphrase) for role in roles}


def _move_aside(path: Path, stamp: str) -> None:
    if path.exists():
        path.rename(path.with_name(f"{path.name}.replaced-{stamp}"))


def init_repository(
    config: CloudConfig, passphrase: str, policy: ExpiryPolicy | None = None, force: bool = False
) -> dict[str, keystore.KeyInfo]:
    """Create every key and version 1 of every role, with the director keys as the first target.

    Keys and repository are built in a staging folder and renamed into place, so an interrupted
    init leaves nothing half-made. ``force`` moves an existing keys folder and repository aside
    (``*.replaced-<time>``) instead of refusing; gateways provisioned with the old root must then
    be given the new one.
    """
    if not force and (is_initialized(config) or keystore.keys_exist(config.keys_dir)):
        raise ImageRepositoryError(
            f"{config.data_dir} already has signing keys or a TUF repository; use --force to replace them"
        )
    with exclusive(config):
        staging = config.data_dir / ".init-staging"
        shutil.rmtree(staging, ignore_errors=True)
        keys = keystore.create_keys(staging / "keys", passphrase)
        signers = {role: keystore.role_signer(keys[role]) for role in keystore.TUF_ROLES}
        repository = DiskRepository(staging / "tuf", signers, policy)
        with repository.edit_root() as root:
            for role in keystore.TUF_ROLES:
                root.add_key(signers[role].public_key, role)
        director_keys = director_keys_document([keys[keystore.DIRECTOR]])
        with repository.edit_targets() as targets:
            targets.targets[DIRECTOR_KEYS_TARGET] = repository.store_target(DIRECTOR_KEYS_TARGET, director_keys)
        repository.do_snapshot()
        repository.do_timestamp()

        if force:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            _move_aside(config.keys_dir, stamp)
            _move_aside(config.tuf_dir, stamp)
        (staging / "keys").rename(config.keys_dir)
        (staging / "tuf").rename(config.tuf_dir)
        staging.rmdir()
    return {name: keystore.key_info(name, key) for name, key in keys.items()}


def _parse_release(release_json: bytes, onnx_bytes: bytes) -> ReleaseFile:
    try:
        release = ReleaseFile.model_validate_json(release_json)
    except ValidationError as exc:
        raise ReleaseRefused(f"release.json is not a valid release file: {exc}") from exc
    try:
        validate_id(release.model_name, "model name")
        validate_id(release.model_version, "model version")
    except ValueError as exc:
        raise ReleaseRefused(str(exc)) from exc
    expected_target = model_target_path(release.model_name, release.model_version)
    if release.model_target != expected_target:
        raise ReleaseRefused(f"release.json names model target {release.model_target!r}, expected {expected_target!r}")
    digest = hashlib.sha256(onnx_bytes).hexdigest()
    if digest != release.model_sha256:
        raise ReleaseRefused(f"model.onnx has sha256 {digest}, release.json declares {release.model_sha256}")
    if len(onnx_bytes) != release.model_length:
        raise ReleaseRefused(f"model.onnx is {len(onnx_bytes)} bytes, release.json declares {release.model_length}")
    return release


def add_release(
    config: CloudConfig,
    passphrase: str,
    release_json: bytes,
    onnx_bytes: bytes,
    policy: ExpiryPolicy | None = None,
) -> PublishedRelease:
    """Sign a model version into the repository: its release file and ONNX file become targets.

    Releases are immutable: publishing the same bytes again is a no-op, different bytes under a
    published name and version are refused.
    """
    release = _parse_release(release_json, onnx_bytes)
    require_initialized(config)
    release_path = release_target_path(release.model_name, release.model_version)
    model_path = model_target_path(release.model_name, release.model_version)
    with exclusive(config):
        signers = online_signers(config, passphrase, ("targets", "snapshot", "timestamp"))
        repository = DiskRepository(config.tuf_dir, signers, policy)
        current = repository.targets()
        new_release = TargetFile.from_data(release_path, release_json)
        new_model = TargetFile.from_data(model_path, onnx_bytes)
        if release_path in current.targets or model_path in current.targets:
            if current.targets.get(release_path) == new_release and current.targets.get(model_path) == new_model:
                return PublishedRelease(
                    release, current.targets[release_path], current.targets[model_path], current.version, True
                )
            raise ReleaseRefused(
                f"{release.model_name} version {release.model_version} is already published with different bytes; "
                "publish a new version instead"
            )
        model_target = repository.store_target(model_path, onnx_bytes)
        release_target = repository.store_target(release_path, release_json)
        with repository.edit_targets() as targets:
            targets.targets[model_path] = model_target
            targets.targets[release_path] = release_target
        repository.do_snapshot()
        repository.do_timestamp()
        return PublishedRelease(release, release_target, model_target, targets.version)


def refresh_timestamp(config: CloudConfig, passphrase: str, policy: ExpiryPolicy | None = None) -> int:
    """Re-sign the timestamp with a fresh expiry; return its new version."""
    require_initialized(config)
    with exclusive(config):
        repository = DiskRepository(config.tuf_dir, online_signers(config, passphrase, ("timestamp",)), policy)
        repository.do_timestamp(force=True)
        return repository.timestamp().version


def expiring_roles(config: CloudConfig, policy: ExpiryPolicy | None = None, now: datetime | None = None) -> list[str]:
    """Online roles (targets, snapshot, timestamp) past half their lifetime, which ``renew_expiring`` re-signs."""
    require_initialized(config)
    policy = policy or ExpiryPolicy()
    now = now or datetime.now(UTC)
    repository = DiskRepository(config.tuf_dir)
    current = {Targets.type: repository.targets(), Snapshot.type: repository.snapshot()}
    current[Timestamp.type] = repository.timestamp()
    return [role for role, signed in current.items() if signed.expires - now < policy.lifetime(role) / 2]


def renew_expiring(
    config: CloudConfig, passphrase: str, policy: ExpiryPolicy | None = None, now: datetime | None = None
) -> list[str]:
    """Re-sign the online roles that are past half their lifetime, so gateways never see a frozen repository.

    Renewing targets forces a new snapshot, and a new snapshot a new timestamp, as TUF requires.
    """
    roles = expiring_roles(config, policy, now)
    if not roles:
        return []
    with exclusive(config):
        signers = online_signers(config, passphrase, ("targets", "snapshot", "timestamp"))
        repository = DiskRepository(config.tuf_dir, signers, policy)
        if Targets.type in roles:
            with repository.edit_targets():
                pass  # no change to the targets: leaving the block bumps version and expiry and re-signs
        repository.do_snapshot(force=Snapshot.type in roles)
        repository.do_timestamp(force=Timestamp.type in roles)
    return roles


def current_targets(config: CloudConfig) -> Targets:
    """The targets metadata gateways currently see."""
    require_initialized(config)
    return DiskRepository(config.tuf_dir).targets()


def verify_stored_release(config: CloudConfig, model_name: str, version: str) -> None:
    """Refuse a release whose files on disk are not the bytes its signed targets metadata lists (length and
    SHA-256): gateways would refuse them, so directing them there would only split registry and fleet."""
    targets = current_targets(config).targets
    for path in (release_target_path(model_name, version), model_target_path(model_name, version)):
        target = targets.get(path)
        if target is None:
            raise TargetMismatch(f"{model_name} version {version} is not published in the TUF repository ({path})")
        for prefixed in target.get_prefixed_paths():
            stored = config.tuf_dir / "targets" / prefixed
            try:
                with stored.open("rb") as data:
                    target.verify_length_and_hashes(data)
            except FileNotFoundError as exc:
                raise TargetMismatch(
                    f"{model_name} version {version}: {stored} is missing; restore it or release a new version"
                ) from exc
            except LengthOrHashMismatchError as exc:
                raise TargetMismatch(
                    f"{model_name} version {version}: {stored} does not match its signed TUF target ({exc}); "
                    "restore it or release a new version"
                ) from exc


def list_targets(config: CloudConfig) -> dict[str, TargetFile]:
    return dict(current_targets(config).targets)


def trusted_root_path(config: CloudConfig) -> Path:
    """The latest root metadata: what a gateway is provisioned with as its TUF trust anchor."""
    require_initialized(config)
    return config.tuf_dir / "metadata" / "root.json"


def trusted_root_bytes(config: CloudConfig) -> bytes:
    return trusted_root_path(config).read_bytes()
