"""The release service: the one way a model version is signed into TUF, and the one way gateways are directed.

``sign`` turns a training artifact folder (``model.onnx`` + ``release.json``) into TUF targets and marks the
registry row released, audited (``cloud.release``) in the transaction that records it. ``direct`` signs and stores
a director document per gateway (``cloud.releases.director``: each gateway in its own savepoint, failures kept in
``director_failures`` for the director publisher to retry, issued digests kept for matching events) inside the
caller's transaction when one is open, so a promotion, a rollout stage or an experiment commits with its documents
or not at all; ``deliver`` sends them once committed (a broker outage leaves them pending, never lost).

Everything that directs gateways goes through here: the registry's promotions and rollbacks (this service is their
``Rollout``), staged rollouts and their completion, experiments, key rotation, the director publisher's own passes
and ``cloud release``. The registry records what is production; it never signs or publishes.

``release`` is ``iotsphere cloud release`` (and the demo's cold start): sign, then make a model's first release
production, which directs the fleet, so the registry says what gateways run. A later version is signed only:
promoting it (``models promote``, a staged rollout, an experiment) is what directs gateways to it, through the
registry's gate and history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlite_utils

from cloud.audit import AuditLog
from cloud.config import PASSPHRASE_ENV, CloudConfig, configured_actor, key_passphrase
from cloud.data import fleet as stored_fleet
from cloud.data import models as stored_models
from cloud.data.connections import connection_of, write_transaction
from cloud.errors import Invalid
from cloud.releases import director, keystore, tuf_repo
from cloud.releases.model_rows import GENERAL, record_release
from cloud.releases.publisher import Directed, deliver
from shared.director import DesiredModel

#: the history's reason when a model's first release becomes production
ARTIFACT_FILES = ("release.json", "model.onnx")


class ArtifactsMissing(Invalid):
    """The folder given to sign is not a training output folder."""


@dataclass(frozen=True)
class Signed:
    """A version signed into TUF and its registry row, marked released."""

    published: tuf_repo.PublishedRelease
    row: dict

    @property
    def model_name(self) -> str:
        return self.published.release.model_name

    @property
    def version(self) -> str:
        return self.published.release.model_version


def read_artifacts(artifact_dir: Path) -> tuple[bytes, bytes]:
    """``release.json`` and ``model.onnx`` of a training output folder."""
    files = {}
    for name in ARTIFACT_FILES:
        path = artifact_dir / name
        if not path.is_file():
            raise ArtifactsMissing(f"{artifact_dir} has no {name}: expected the output folder of training")
        files[name] = path.read_bytes()
    return files["release.json"], files["model.onnx"]


def gateways_in_scope(db: sqlite_utils.Database, model_name: str, device_type: str) -> list[str]:
    """Gateways serving ``device_type``; for ``GENERAL``, every known gateway but those that serve a device
    type with its own production version of ``model_name`` (a document names one version per model)."""
    connection = connection_of(db)
    if device_type != GENERAL:
        return stored_fleet.gateways_serving(connection, [device_type])
    scopes = {row["production_device_type"] for row in stored_models.production_versions(connection, model_name)}
    specific = set(stored_fleet.gateways_serving(connection, scopes - {None}))
    return [gateway_id for gateway_id in director.known_gateways(db) if gateway_id not in specific]


@dataclass(frozen=True)
class ReleaseService:
    """Signing and directing with the keys in ``config.keys_dir``, opened by ``passphrase``.

    The director key is opened for each pass (never cached): after a rotation the next pass signs with the new key.
    """

    config: CloudConfig
    passphrase: str
    #: seconds to wait for the broker's PUBACK when delivering
    delivery_timeout: float = 10.0

    @classmethod
    def from_environment(cls, config: CloudConfig) -> ReleaseService:
        """The service as a library call gets it: the passphrase from the environment (never a prompt)."""
        passphrase = key_passphrase()
        if not passphrase:
            raise keystore.KeystoreError(
                f"signing and directing need the signing-key passphrase: set {PASSPHRASE_ENV} or pass a rollout"
            )
        return cls(config, passphrase)

    # -- signing -------------------------------------------------------------------------------------

    def sign(self, db: sqlite_utils.Database, artifact_dir: Path, *, actor: str | None = None) -> Signed:
        """Sign the folder's release into TUF (identical bytes again: nothing re-signed) and record the registry row
        released, audited as ``actor``; nothing is directed."""
        release_json, onnx_bytes = read_artifacts(artifact_dir)
        published = tuf_repo.add_release(self.config, self.passphrase, release_json, onnx_bytes)
        return Signed(published, record_release(db, published, actor=actor))

    # -- directing -----------------------------------------------------------------------------------

    def desired(self, model_name: str, version: str) -> dict[str, DesiredModel]:
        """The desired state naming one published version of the model (experiments add a challenger to it)."""
        return {model_name: director.desired_model(self.config, model_name, version)}

    def check(self, model_name: str, version: str) -> None:
        """Raise before anything changes if the director key does not open, the version is not a TUF target, or
        its files on disk are not the bytes TUF signed (gateways would refuse them)."""
        keystore.director_key(self.config.keys_dir, self.passphrase)
        director.desired_model(self.config, model_name, version)
        tuf_repo.verify_stored_release(self.config, model_name, version)

    def direct(
        self,
        db: sqlite_utils.Database,
        gateway_ids: list[str],
        updates: dict[str, DesiredModel] | None = None,
        *,
        fleet: bool = False,
        validity: timedelta = director.DEFAULT_VALIDITY,
        now: datetime | None = None,
    ) -> director.Issued:
        """Sign and store a document per gateway with ``updates`` (none: its current desired state, re-signed and
        renewed); ``fleet`` also makes ``updates`` the desired state of gateways seen later. In the caller's
        transaction when one is open; nothing is sent (``deliver`` after the commit)."""
        key = keystore.director_key(self.config.keys_dir, self.passphrase)
        with write_transaction(db):
            if fleet and updates:
                director.set_fleet_desired(db, updates)
            return director.issue_documents(self.config, db, key, gateway_ids, updates, validity, now)

    def deliver(self, db: sqlite_utils.Database) -> str | None:
        """Send every stored document not yet on the broker; why they are not there yet, or None."""
        return deliver(self.config, db, self.delivery_timeout)

    def direct_gateways(
        self,
        db: sqlite_utils.Database,
        model_name: str,
        version: str,
        gateway_ids: list[str],
        *,
        actor: str | None = None,
    ) -> Directed:
        """Direct named gateways to a published version outside any promotion (the registry is unchanged), audited
        (``cloud.direct``) with the documents; then deliver them."""
        with write_transaction(db):
            issued = self.direct(db, gateway_ids, self.desired(model_name, version))
            details = {"version": version, "gateway_ids": gateway_ids}
            details |= {"directed": len(issued.documents), "not_directed": len(issued.failures)}
            AuditLog(db).record(actor or configured_actor(), "cloud.direct", model_name, details)
        return Directed.of(issued, self.deliver(db))

    # -- the registry's Rollout ----------------------------------------------------------------------

    def direct_production(
        self, db: sqlite_utils.Database, model_name: str, version: str, device_type: str
    ) -> director.Issued:
        """Direct the gateways a production scope covers (a general version also becomes the fleet's desired
        state), in the registry's open transaction."""
        gateway_ids = self.production_gateways(db, model_name, device_type)
        return self.direct(db, gateway_ids, self.desired(model_name, version), fleet=device_type == GENERAL)

    def production_gateways(self, db: sqlite_utils.Database, model_name: str, device_type: str) -> list[str]:
        return gateways_in_scope(db, model_name, device_type)
