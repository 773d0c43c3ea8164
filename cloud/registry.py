"""MLModelRegistry: model versions with their lineage, which one is in production, and how it got there.

A version becomes ``production`` for one scope: a device type, or ``GENERAL`` (every device type without its
own). The schema's partial unique index keeps one production version per model name and scope, and every
promotion or rollback writes a ``model_history`` row (who, when, from, to, why) in the same transaction. Only
released versions (signed into TUF) whose files on disk still match their signed targets become production. One
gate rule for promotions and rollbacks alike: a version that failed evaluation needs an admin override with a
reason, whichever way it would come back.

The registry records state; it never signs or publishes. A promotion or rollback hands directing to its
``Rollout`` (``cloud.releases.service.ReleaseService``), which issues the director documents (a rollback is such a
document, with a higher sequence, naming the older release) inside the registry's transaction: the switch and its
documents commit together, or the registry is left as it was. A gateway that cannot be directed is part of a
completed promotion (recorded in ``director_failures``, reported in the ``Change``, retried by the director
publisher); anything else that goes wrong while directing rolls the whole change back and raises
``RegistryUnavailable``. The documents reach the broker after the commit.

Every change (a version registered, evaluated or discarded, a promotion or rollback) writes its audit entry in the
transaction that makes it, as the ``actor`` the caller names (default: the configured one): a change whose entry
cannot be written is not made. Details carry ids, versions and hashes, not reasons (the history keeps those).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import sqlite_utils
from sqlalchemy.exc import IntegrityError
from tuf.api.metadata import Metadata

from cloud.audit import AuditLog
from cloud.config import CloudConfig, configured_actor
from cloud.data import models as stored_models
from cloud.data import monitoring as stored_monitoring
from cloud.data.connections import connection_of, database_file, write_transaction
from cloud.errors import NotFound, Refused, Unavailable
from cloud.releases.model_rows import GENERAL, PRODUCTION, RELEASED
from cloud.releases.service import ReleaseService
from cloud.storage import iso
from shared.release import ReleaseFile

if TYPE_CHECKING:
    from cloud.releases.director import Issued, IssueFailure
    from shared.director import DirectorDocument

#: what a registration needs, from its metadata or its artifact folder's release.json
REQUIRED_METADATA = ("prediction_type", "feature_set_version", "model_sha256")


class UnknownModel(NotFound, LookupError):
    """No such model name or version in the registry."""


class RegistryRefused(Refused, ValueError):
    """A promotion or rollback that would break one of the registry's rules; nothing was changed."""


class RegistryUnavailable(Unavailable, RuntimeError):
    """Directing gateways failed as a whole (storage, signing) during a promotion or rollback; nothing was changed."""


class Rollout(Protocol):
    """Directs gateways to a model version (``cloud.releases.service.ReleaseService``); ``check`` fails before the
    registry changes anything."""

    def check(self, model_name: str, version: str) -> None: ...

    def direct_production(self, db: sqlite_utils.Database, model_name: str, version: str, device_type: str) -> Issued:
        """Issue the documents for the production scope inside the registry's open transaction (nothing sent)."""
        ...

    def deliver(self, db: sqlite_utils.Database) -> str | None:
        """After the commit: send what is pending; why it is not on the broker yet, or None."""
        ...


@dataclass(frozen=True)
class Change:
    """A committed promotion or rollback, the director documents it issued and the gateways it could not direct."""

    history: dict
    documents: list[DirectorDocument] = field(default_factory=list)
    #: gateways that got no document (recorded; the director publisher retries them)
    failures: list[IssueFailure] = field(default_factory=list)
    #: why the documents are not on the broker yet (stored; the director publisher sends them later)
    pending: str | None = None


def passes_gate(row: dict, override: bool = False) -> bool:
    """The one evaluation gate: a version that failed evaluation becomes production only by an admin's override."""
    return row["evaluation_passed"] != 0 or override


class MLModelRegistry:
    """Versions are numbered 1, 2, 3… per model name; each row keeps metrics and lineage as JSON.

    ``config`` says where the signing keys and the broker are for a promotion or rollback given no ``rollout``
    (default: the data folder holding the database, with the configured broker).
    """

    def __init__(self, db: sqlite_utils.Database, config: CloudConfig | None = None):
        self.db = db
        self.config = config

    def default_rollout(self) -> Rollout:
        """The release service, as the CLI and the API direct gateways: the configured keys, passphrase from the
        environment (a library call never prompts)."""
        return ReleaseService.from_environment(self.config or CloudConfig(data_dir=_data_dir(self.db)))

    def next_version(self, model_name: str) -> str:
        """One above the highest all-digit version (computed in SQL: a model may have thousands)."""
        highest = stored_models.highest_numeric_version(connection_of(self.db), model_name)
        return str((highest or 0) + 1)

    def _audit(self, actor: str | None, action: str, model_name: str, details: dict[str, Any]) -> None:
        """The audit entry of a change, in the caller's open transaction."""
        AuditLog(self.db).record(actor or configured_actor(), f"models.{action}", model_name, details)

    def register_model(
        self,
        model_name: str,
        model_version: str,
        model_artifacts_path: str | Path,
        metadata: dict[str, Any] | None = None,
        *,
        actor: str | None = None,
    ) -> dict:
        """Record a trained version as a candidate; refuse to overwrite an existing version.

        What ``metadata`` leaves out (prediction type, feature set version, model hash, device types, lineage) is
        read from the artifact folder's ``release.json``, which training writes; without one, ``metadata`` must
        name ``prediction_type``, ``feature_set_version`` and ``model_sha256``.
        """
        given = {**_release_metadata(Path(model_artifacts_path), model_name, model_version), **(metadata or {})}
        missing = [key for key in REQUIRED_METADATA if not given.get(key)]
        if missing:
            raise RegistryRefused(
                f"cannot register {model_name} version {model_version}: metadata lacks {', '.join(missing)} and "
                f"{model_artifacts_path} has no release.json to read them from"
            )
        row = {
            "model_name": model_name,
            "model_version": model_version,
            "prediction_type": given["prediction_type"],
            "status": "candidate",
            "created_at": iso(datetime.now(UTC)),
            "feature_set_version": given["feature_set_version"],
            "device_types_json": json.dumps(given.get("device_types", [])),
            "metrics_json": json.dumps(given.get("metrics", {})),
            "lineage_json": json.dumps({**given.get("lineage", {}), "artifacts_path": str(model_artifacts_path)}),
            "model_sha256": given["model_sha256"],
        }
        # the write lock before the check: two registrations cannot both pass it
        with write_transaction(self.db) as connection:
            if stored_models.find_version(connection, model_name, model_version) is not None:
                raise RegistryRefused(f"{model_name} version {model_version} is already registered")
            stored_models.add_version(connection, row)
            details = {"version": model_version, "model_sha256": row["model_sha256"]}
            self._audit(actor, "register", model_name, details)
        return row

    def discard_candidate(self, model_name: str, model_version: str, *, actor: str | None = None) -> None:
        """Remove a version a failed training run registered, with its evaluations and drift reference (its number
        will be used again); a released or promoted version is never removed (and nothing removed, nothing
        audited)."""
        with write_transaction(self.db) as connection:
            if stored_models.discard_candidate(connection, model_name, model_version):
                stored_monitoring.delete_reference(connection, model_name, model_version)
                self._audit(actor, "discard", model_name, {"version": model_version})

    def get_version(self, model_name: str, model_version: str) -> dict:
        row = stored_models.find_version(connection_of(self.db), model_name, model_version)
        if row is None:
            raise UnknownModel(f"no model {model_name!r} version {model_version!r}")
        return dict(row)

    def list_versions(self, model_name: str | None = None) -> list[dict]:
        """Versions oldest first, of one model or of all."""
        rows = [dict(row) for row in stored_models.versions(connection_of(self.db), model_name or None)]
        if model_name and not rows:
            raise UnknownModel(f"unknown model {model_name!r}")
        return rows

    def record_evaluation(
        self, model_name: str, model_version: str, passed: bool, details: dict[str, Any], *, actor: str | None = None
    ) -> None:
        """Store an evaluation's verdict; a failed one blocks promotion unless an admin overrides it."""
        self.get_version(model_name, model_version)
        evaluation = {"evaluation_passed": int(passed), "evaluation_json": json.dumps(details)}
        with write_transaction(self.db) as connection:
            stored_models.update_version(connection, model_name, model_version, evaluation)
            self._audit(actor, "evaluate", model_name, {"version": model_version, "passed": bool(passed)})

    def get_active_model(self, model_name: str, device_type: str | None = None) -> dict | None:
        """The production version for ``device_type``, else the general one; None when there is neither."""
        row = stored_models.production_in(connection_of(self.db), model_name, [device_type or GENERAL, GENERAL])
        return dict(row) if row else None

    def promote_model_to_production(
        self,
        model_name: str,
        model_version: str,
        device_type: str | None = None,
        *,
        actor: str | None = None,
        reason: str | None = None,
        rollout: Rollout | None = None,
        override: bool = False,
    ) -> Change:
        """Make a released version production for ``device_type`` (default: all) and direct gateways to it.

        ``override`` (an admin's decision, with ``reason``) lets a version that failed evaluation through. Defaults:
        the configured actor, "promoted by <actor>", the director (``default_rollout``).
        """
        row = self.get_version(model_name, model_version)
        actor = actor or configured_actor()
        reason = f"promoted by {actor}" if reason is None else reason
        return self._switch(row, device_type, "promote", actor, reason, rollout, override)

    def rollback_model(
        self,
        model_name: str,
        to_version: str | None = None,
        device_type: str | None = None,
        *,
        actor: str | None = None,
        reason: str | None = None,
        rollout: Rollout | None = None,
        override: bool = False,
    ) -> Change:
        """Put back ``to_version`` (default: the version production had before the current one).

        The gate is promotion's: a version that failed evaluation comes back only with ``override`` (an admin's).
        Defaults as for a promotion ("rolled back by <actor>").
        """
        scope = device_type or GENERAL
        current = self._production(model_name, scope)
        if current is None:
            raise RegistryRefused(f"{model_name} has no production version for {_scope_name(scope)} to roll back")
        if to_version is None:
            previous = stored_models.version_before(connection_of(self.db), model_name, scope, current["model_version"])
            if previous is None:
                raise RegistryRefused(
                    f"nothing to roll back to: {model_name} version {current['model_version']} is the first "
                    f"production version for {_scope_name(scope)}, there was none before it (to put another "
                    "released version in its place, promote it or name it as the version to roll back to)"
                )
            to_version = previous
        row = self.get_version(model_name, to_version)
        actor = actor or configured_actor()
        reason = f"rolled back by {actor}" if reason is None else reason
        return self._switch(row, scope, "rollback", actor, reason, rollout, override)

    def rollback_candidate(self, model_name: str, version: str, device_type: str | None = None) -> str | None:
        """What an automatic rollback may put back where ``version`` was asked for, by the gate's one rule.

        ``version`` itself when it is admitted: it passes the gate, or it is the scope's production version (an
        admin let it through with a reason, and gateways go back to what the registry says production is).
        Otherwise the newest admitted released version created before it; None when there is none, and the caller
        leaves those gateways where they are and says so (no one is there to give an override).
        """
        scope = device_type or GENERAL
        row = self.get_version(model_name, version)

        def admitted(candidate: dict) -> bool:
            production = candidate["status"] == PRODUCTION and candidate["production_device_type"] == scope
            return bool(candidate["release_target"]) and (passes_gate(candidate) or production)

        if admitted(row):
            return version
        earlier = [v for v in self.list_versions(model_name) if v["created_at"] < row["created_at"] and admitted(v)]
        return earlier[-1]["model_version"] if earlier else None

    def history(self, model_name: str, device_type: str | None = None) -> list[dict]:
        """Promotions and rollbacks of a model, newest first; only one scope's when ``device_type`` is given."""
        return [dict(row) for row in stored_models.history(connection_of(self.db), model_name, device_type)]

    def _production(self, model_name: str, scope: str) -> dict | None:
        row = stored_models.production_in(connection_of(self.db), model_name, [scope])
        return dict(row) if row else None

    def _switch(
        self,
        row: dict,
        device_type: str | None,
        action: str,
        actor: str,
        reason: str,
        rollout: Rollout | None,
        override: bool = False,
    ) -> Change:
        """Check the rules, then commit the new production version, its history row, the director documents and the
        audit entry together; send the documents once committed."""
        name, version, scope = row["model_name"], row["model_version"], device_type or GENERAL
        if not reason.strip():
            raise RegistryRefused(f"a {action} needs a reason")
        if not row["release_target"]:
            raise RegistryRefused(f"{name} version {version} is not released (signed into TUF): release it first")
        targets = json.loads(row["device_types_json"] or "[]")
        if scope != GENERAL and targets and scope not in targets:
            raise RegistryRefused(f"{name} version {version} targets {targets}, not device type {scope!r}")
        if row["status"] == PRODUCTION:
            raise RegistryRefused(
                f"{name} version {version} is already production for {_scope_name(row['production_device_type'])}"
            )
        if not passes_gate(row, override):
            doing = "promoting it" if action == "promote" else "rolling back to it"
            raise RegistryRefused(
                f"{name} version {version} failed evaluation: {doing} needs an admin override with a reason"
            )
        rollout = rollout or self.default_rollout()  # after the rules: a refusal needs no passphrase
        rollout.check(name, version)
        try:
            with write_transaction(self.db):
                entry = self._commit_switch(name, version, scope, action, actor, reason, override)
                issued = rollout.direct_production(self.db, name, version, scope)
                fields = ("device_type", "from_version", "to_version", "override")
                details = {"history_id": entry["id"], **{field: entry[field] for field in fields}}
                self._audit(actor, action, name, {**details, "directed": len(issued.documents)})
        except RegistryRefused:
            raise
        except Exception as exc:  # whatever it was, the transaction is rolled back: say so, with the cause
            raise RegistryUnavailable(
                f"{action} of {name} version {version} for {_scope_name(scope)} not done, the registry is unchanged: "
                f"directing gateways or recording the change failed ({type(exc).__name__}: {exc})"
            ) from exc
        return Change(entry, issued.documents, issued.failures, rollout.deliver(self.db))

    def _commit_switch(
        self, name: str, version: str, scope: str, action: str, actor: str, reason: str, override: bool
    ) -> dict:
        """Inside the caller's transaction: the new production version and its history row."""
        current = self._production(name, scope)
        entry = {
            "at": iso(datetime.now(UTC)),
            "actor": actor,
            "model_name": name,
            "device_type": scope,
            "from_version": current["model_version"] if current else None,
            "to_version": version,
            "action": action,
            "reason": reason,
            "override": int(override),
        }
        connection = connection_of(self.db)
        try:
            stored_models.switch_production(connection, name, version, scope, entry["from_version"], RELEASED)
        except IntegrityError as exc:  # models_one_production: another process made one since the check
            if "unique" not in str(exc.orig).lower():
                raise
            raise RegistryRefused(
                f"{name} already has a production version for {_scope_name(scope)}: {exc.orig}"
            ) from exc
        entry["id"] = stored_models.add_history(connection, entry)
        return entry


def _data_dir(db: sqlite_utils.Database) -> Path:
    """The data folder holding the database file (where the keys and the TUF repository are); on PostgreSQL, whose
    database is no file, the process's configured one (``IOTSPHERE_DATA_DIR``)."""
    connection = connection_of(db)
    if connection.dialect.name == "postgresql":
        return CloudConfig().data_dir
    path = database_file(connection)
    if not path:
        raise Unavailable(
            "an in-memory database has no data folder for the signing keys: give MLModelRegistry a config"
        )
    return Path(path).parent


def _release_metadata(folder: Path, model_name: str, model_version: str) -> dict[str, Any]:
    """The metadata a training run's ``release.json`` carries, or nothing when the folder has none."""
    path = folder / "release.json"
    if not path.is_file():
        return {}
    try:
        release = ReleaseFile.model_validate_json(path.read_bytes())
    except ValueError as exc:
        raise RegistryRefused(f"{path} is not a valid release file: {exc}") from exc
    if (release.model_name, release.model_version) != (model_name, model_version):
        raise RegistryRefused(
            f"{path} describes {release.model_name} version {release.model_version}, not {model_name} {model_version}"
        )
    fields = ("feature_set_version", "model_sha256", "device_types", "lineage")
    return {"prediction_type": release.prediction_type.value, **{name: getattr(release, name) for name in fields}}


def _scope_name(scope: str | None) -> str:
    return f"device type {scope!r}" if scope else "all device types"


def version_lineage(row: dict, tuf_dir: Path | None = None) -> dict[str, Any]:
    """Everything a version came from, in one shape: data, features, parameters, code, metrics, artifact, TUF.

    The signing key ids are those that signed the TUF targets metadata listing the release (read from
    ``tuf_dir`` when given).
    """
    lineage = json.loads(row["lineage_json"] or "{}")
    dataset = lineage.get("dataset")
    return {
        "dataset_id": lineage.get("dataset_id") or (dataset.get("sha256") if isinstance(dataset, dict) else dataset),
        "feature_set_version": row["feature_set_version"],
        "training_parameters": lineage.get("training_parameters"),
        "code_version": lineage.get("code_version"),
        "metrics": json.loads(row["metrics_json"] or "{}"),
        "artifact_sha256": row["model_sha256"],
        "tuf_target": row["model_target"],
        "release_target": row["release_target"],
        "targets_version": row.get("targets_version"),
        "signing_key_ids": _signing_key_ids(tuf_dir, row.get("targets_version")),
    }


def _signing_key_ids(tuf_dir: Path | None, targets_version: int | None) -> list[str]:
    if tuf_dir is None or targets_version is None:
        return []
    path = tuf_dir / "metadata" / f"{targets_version}.targets.json"
    return sorted(Metadata.from_file(str(path)).signatures) if path.exists() else []
