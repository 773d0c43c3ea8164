"""MLModelRegistry: model versions with their lineage, which one is in production, and how it got there.

A version becomes ``production`` for one scope: a device type, or ``GENERAL`` (every device type without its
own). The schema's partial unique index keeps one production version per model name and scope, and every
promotion or rollback writes a ``model_history`` row (who, when, from, to, why) in the same transaction. Only
released versions (signed into TUF) are promoted; a version that failed evaluation needs an admin override with
a reason. After the switch is committed a ``Rollout`` directs gateways to the version with new signed director
documents; a rollback is such a document, with a higher sequence, naming the older release.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import sqlite_utils
from tuf.api.metadata import Metadata

from cloud.config import CloudConfig
from cloud.releases import director, keystore
from cloud.releases.model_rows import RELEASED
from cloud.releases.publisher import PublishError, release_to_gateways
from cloud.storage import iso
from shared.director import DirectorDocument

PRODUCTION = "production"
#: the production scope of a version serving every device type that has no version of its own
GENERAL = ""


class UnknownModel(LookupError):
    """No such model name or version in the registry."""


class RegistryRefused(ValueError):
    """A promotion or rollback that would break one of the registry's rules; nothing was changed."""


class Rollout(Protocol):
    """Directs gateways to a model version; ``check`` fails before the registry changes anything."""

    def check(self, model_name: str, version: str) -> None: ...

    def publish(
        self, db: sqlite_utils.Database, model_name: str, version: str, device_type: str
    ) -> list[DirectorDocument]: ...


@dataclass(frozen=True)
class DirectorRollout:
    """Signed director documents on each gateway's retained ``down/desired`` (``cloud.releases.publisher``)."""

    config: CloudConfig
    passphrase: str

    def check(self, model_name: str, version: str) -> None:
        """Raise if the director key does not open or the version is not a TUF target."""
        keystore.director_key(self.config.keys_dir, self.passphrase)
        director.desired_model(self.config, model_name, version)

    def publish(
        self, db: sqlite_utils.Database, model_name: str, version: str, device_type: str
    ) -> list[DirectorDocument]:
        """Direct the gateways the scope covers; a general version also becomes the fleet's desired state.

        A director document names one version per model, so a gateway serving a device type that has its own
        production version keeps that one when the general version changes.
        """
        if device_type == GENERAL:
            director.set_fleet_desired(
                self.config, {model_name: director.desired_model(self.config, model_name, version)}
            )
        gateway_ids = gateways_in_scope(db, model_name, device_type)
        return release_to_gateways(self.config, self.passphrase, model_name, version, gateway_ids)


def gateways_in_scope(db: sqlite_utils.Database, model_name: str, device_type: str) -> list[str]:
    """Gateways serving ``device_type``; for ``GENERAL``, every known gateway but those that serve a device
    type with its own production version of ``model_name``."""
    if device_type != GENERAL:
        query = "SELECT DISTINCT gateway_id FROM devices WHERE device_type = ? AND gateway_id IS NOT NULL"
        return [row[0] for row in db.execute(query + " ORDER BY gateway_id", [device_type])]
    specific = {
        row[0]
        for row in db.execute(
            """SELECT DISTINCT d.gateway_id FROM devices d JOIN models m
               ON m.production_device_type = d.device_type AND m.status = ? AND m.model_name = ?""",
            [PRODUCTION, model_name],
        )
    }
    return [gateway_id for gateway_id in director.known_gateways(db) if gateway_id not in specific]


@dataclass(frozen=True)
class Change:
    """A committed promotion or rollback and the director documents it issued."""

    history: dict
    documents: list[DirectorDocument]
    #: why the documents are not on the broker yet (stored; the director publisher sends them later)
    pending: str | None = None


class MLModelRegistry:
    """Versions are numbered 1, 2, 3… per model name; each row keeps metrics and lineage as JSON."""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db

    def next_version(self, model_name: str) -> str:
        """One above the highest all-digit version (computed in SQL: a model may have thousands)."""
        (highest,) = self.db.execute(
            """SELECT MAX(CAST(model_version AS INTEGER)) FROM models
               WHERE model_name = ? AND model_version != '' AND model_version NOT GLOB '*[^0-9]*'""",
            [model_name],
        ).fetchone()
        return str((highest or 0) + 1)

    def register_model(
        self, model_name: str, model_version: str, model_artifacts_path: str | Path, metadata: dict[str, Any]
    ) -> dict:
        """Record a trained version as a candidate; refuse to overwrite an existing version."""
        table = self.db["models"]
        if list(table.rows_where("model_name = ? AND model_version = ?", [model_name, model_version])):
            raise ValueError(f"{model_name} version {model_version} is already registered")
        row = {
            "model_name": model_name,
            "model_version": model_version,
            "prediction_type": metadata["prediction_type"],
            "status": "candidate",
            "created_at": iso(datetime.now(UTC)),
            "feature_set_version": metadata["feature_set_version"],
            "device_types_json": json.dumps(metadata.get("device_types", [])),
            "metrics_json": json.dumps(metadata.get("metrics", {})),
            "lineage_json": json.dumps({**metadata.get("lineage", {}), "artifacts_path": str(model_artifacts_path)}),
            "model_sha256": metadata["model_sha256"],
        }
        table.insert(row)
        return row

    def discard_candidate(self, model_name: str, model_version: str) -> None:
        """Remove a version a failed training run registered, with its evaluations and drift reference (its number
        will be used again); a released or promoted version is never removed."""
        key = [model_name, model_version]
        with self.db.conn:
            removed = self.db.execute(
                "DELETE FROM models WHERE model_name = ? AND model_version = ? AND status = 'candidate'", key
            ).rowcount
            if removed:
                for table in ("model_evaluations", "model_references"):
                    self.db.execute(f"DELETE FROM {table} WHERE model_name = ? AND model_version = ?", key)

    def get_version(self, model_name: str, model_version: str) -> dict:
        rows = list(self.db["models"].rows_where("model_name = ? AND model_version = ?", [model_name, model_version]))
        if not rows:
            raise UnknownModel(f"no model {model_name!r} version {model_version!r}")
        return rows[0]

    def list_versions(self, model_name: str | None = None) -> list[dict]:
        """Versions oldest first, of one model or of all."""
        where, args = ("model_name = ?", [model_name]) if model_name else (None, [])
        rows = list(self.db["models"].rows_where(where, args, order_by="model_name, created_at, model_version"))
        if model_name and not rows:
            raise UnknownModel(f"unknown model {model_name!r}")
        return rows

    def record_evaluation(self, model_name: str, model_version: str, passed: bool, details: dict[str, Any]) -> None:
        """Store an evaluation's verdict; a failed one blocks promotion unless an admin overrides it."""
        self.get_version(model_name, model_version)
        with self.db.conn:
            self.db["models"].update(
                (model_name, model_version), {"evaluation_passed": int(passed), "evaluation_json": json.dumps(details)}
            )

    def get_active_model(self, model_name: str, device_type: str | None = None) -> dict | None:
        """The production version for ``device_type``, else the general one; None when there is neither."""
        rows = self.db["models"].rows_where(
            "model_name = ? AND status = ? AND production_device_type IN (?, ?)",
            [model_name, PRODUCTION, device_type or GENERAL, GENERAL],
            order_by="production_device_type DESC",  # a device type sorts after GENERAL ('')
            limit=1,
        )
        return next(iter(rows), None)

    def promote_model_to_production(
        self,
        model_name: str,
        model_version: str,
        device_type: str | None = None,
        *,
        actor: str,
        reason: str,
        rollout: Rollout,
        override: bool = False,
    ) -> Change:
        """Make a released version production for ``device_type`` (default: all) and direct gateways to it.

        ``override`` (an admin's decision, with ``reason``) lets a version that failed evaluation through.
        """
        row = self.get_version(model_name, model_version)
        if row["evaluation_passed"] == 0 and not override:
            raise RegistryRefused(
                f"{model_name} version {model_version} failed evaluation: promoting it needs an admin override "
                "with a reason"
            )
        return self._switch(row, device_type, "promote", actor, reason, rollout, override)

    def rollback_model(
        self,
        model_name: str,
        to_version: str | None = None,
        device_type: str | None = None,
        *,
        actor: str,
        reason: str,
        rollout: Rollout,
    ) -> Change:
        """Put back ``to_version`` (default: the version production had before the current one)."""
        scope = device_type or GENERAL
        current = self._production(model_name, scope)
        if current is None:
            raise RegistryRefused(f"{model_name} has no production version for {_scope_name(scope)} to roll back")
        if to_version is None:
            previous = self.db.execute(
                """SELECT from_version FROM model_history WHERE model_name = ? AND device_type = ?
                   AND to_version = ? AND from_version IS NOT NULL ORDER BY id DESC LIMIT 1""",
                [model_name, scope, current["model_version"]],
            ).fetchone()
            if previous is None:
                raise RegistryRefused(
                    f"{model_name} version {current['model_version']} has no earlier production version for "
                    f"{_scope_name(scope)}: name the version to roll back to"
                )
            to_version = previous[0]
        return self._switch(self.get_version(model_name, to_version), scope, "rollback", actor, reason, rollout)

    def history(self, model_name: str, device_type: str | None = None) -> list[dict]:
        """Promotions and rollbacks of a model, newest first; only one scope's when ``device_type`` is given."""
        where, args = "model_name = ?", [model_name]
        if device_type is not None:
            where, args = where + " AND device_type = ?", [*args, device_type]
        return list(self.db["model_history"].rows_where(where, args, order_by="id DESC"))

    def _production(self, model_name: str, scope: str) -> dict | None:
        rows = self.db["models"].rows_where(
            "model_name = ? AND status = ? AND production_device_type = ?", [model_name, PRODUCTION, scope]
        )
        return next(iter(rows), None)

    def _switch(
        self,
        row: dict,
        device_type: str | None,
        action: str,
        actor: str,
        reason: str,
        rollout: Rollout,
        override: bool = False,
    ) -> Change:
        """Check the rules, commit the new production version with its history row, then publish."""
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
        rollout.check(name, version)
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
        try:
            with self.db.conn:
                if current:
                    self.db["models"].update(
                        (name, current["model_version"]), {"status": RELEASED, "production_device_type": None}
                    )
                self.db["models"].update((name, version), {"status": PRODUCTION, "production_device_type": scope})
                entry["id"] = self.db["model_history"].insert(entry).last_pk
        except sqlite3.IntegrityError as exc:  # another promotion for this scope committed first
            raise RegistryRefused(f"{name} already has a production version for {_scope_name(scope)}: {exc}") from exc
        try:
            return Change(entry, rollout.publish(self.db, name, version, scope))
        except PublishError as exc:
            return Change(entry, [], pending=str(exc))


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
