"""The ``models`` table row of a signed release: where its TUF targets are, and that it is released."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlite_utils

from cloud.audit import AuditLog
from cloud.config import configured_actor
from cloud.data import models as stored_models
from cloud.data.connections import write_transaction
from cloud.errors import Refused
from cloud.releases.tuf_repo import PublishedRelease, sha256_of
from cloud.storage import iso

RELEASED = "released"
PRODUCTION = "production"
#: the production scope of a version serving every device type that has no version of its own
GENERAL = ""


class RegistryMismatch(Refused):
    """The registry lists other ONNX bytes under the released name and version."""


def record_release(db: sqlite_utils.Database, published: PublishedRelease, *, actor: str | None = None) -> dict:
    """Mark the version released with its target paths; add the row if training did not register it. Audited as
    ``actor`` in the same transaction.

    Refuses when the registry holds a different ONNX file under the same name and version; a version
    already in production stays in production.
    """
    release = published.release
    key = (release.model_name, release.model_version)
    model_sha256 = sha256_of(published.model_target)
    signed = {
        "release_target": published.release_target.path,
        "model_target": published.model_target.path,
        "model_sha256": model_sha256,
        "status": RELEASED,
        "targets_version": published.targets_version,  # whose signatures name the signing key
    }
    with write_transaction(db) as connection:
        row = stored_models.find_version(connection, *key)
        if row:
            registered = row["model_sha256"]
            if registered and registered != model_sha256:
                raise RegistryMismatch(
                    f"the registry lists {release.model_name} version {release.model_version} with sha256 "
                    f"{registered}, but the released model.onnx has {model_sha256}"
                )
            # re-recording a release must not demote a version the registry has promoted
            status = row["status"] if row["status"] == PRODUCTION else RELEASED
            stored_models.update_version(connection, *key, {**signed, "status": status})
        else:
            stored_models.add_version(
                connection,
                {
                    "model_name": release.model_name,
                    "model_version": release.model_version,
                    "prediction_type": release.prediction_type.value,
                    "created_at": iso(datetime.now(UTC)),
                    "feature_set_version": release.feature_set_version,
                    "device_types_json": json.dumps(release.device_types),
                    "metrics_json": json.dumps({}),
                    "lineage_json": json.dumps(release.lineage),
                    **signed,
                },
            )
        details = {
            "targets_version": published.targets_version,
            "already_published": published.already_published,
            "model_sha256": model_sha256,
        }
        target = f"{release.model_name}/{release.model_version}"
        AuditLog(db).record(actor or configured_actor(), "cloud.release", target, details)
        return dict(stored_models.find_version(connection, *key))
