"""What the cloud knows, read from its database: the demo's status line and summary come from here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import sqlite_utils

from cloud.data import dead_letters, features, fleet, predictions
from cloud.data.connections import connection_of
from cloud.releases.director import latest_document
from shared.messages import EventKind


@dataclass
class CloudView:
    gateways_online: int = 0
    #: gateway id → model name → the version its latest status says it serves
    versions: dict[str, dict[str, str | None]] = field(default_factory=dict)
    #: gateway id → model name → the version the cloud's latest director document tells it to run
    directed: dict[str, dict[str, str]] = field(default_factory=dict)
    predictions: int = 0
    #: model name → version → predictions stored
    predictions_by_model: dict[str, dict[str, int]] = field(default_factory=dict)
    predictions_by_gateway: dict[str, int] = field(default_factory=dict)
    features: int = 0
    rejected_updates: int = 0
    dead_letters: int = 0


def read_cloud_view(db: sqlite_utils.Database, gateway_ids: list[str]) -> CloudView:
    connection = connection_of(db)
    view = CloudView(versions={gateway_id: {} for gateway_id in gateway_ids})
    for row in fleet.gateways_with_device_counts(connection):
        if row["gateway_id"] not in view.versions:
            continue  # another fleet on a shared broker and prefix
        view.gateways_online += bool(row["online"])
        status = json.loads(row["status_json"] or "{}")
        view.versions[row["gateway_id"]] = {m["model_name"]: m.get("active_version") for m in status.get("models", [])}
    for gateway_id in gateway_ids:
        document = latest_document(db, gateway_id)
        if document is not None:
            view.directed[gateway_id] = {name: model.version for name, model in document.signed.models.items()}
    for model_name, model_version, n in predictions.counts_by_version(connection):
        view.predictions_by_model.setdefault(model_name, {})[model_version] = n
    view.predictions = sum(n for versions in view.predictions_by_model.values() for n in versions.values())
    view.predictions_by_gateway = predictions.counts_by_gateway(connection)
    view.features = features.count_rows(connection)
    view.rejected_updates = fleet.count_events(connection, EventKind.REJECT.value)
    view.dead_letters = dead_letters.count(connection)
    return view


def latest_predicted_device(db: sqlite_utils.Database, prediction_type: str) -> str | None:
    """The device with the newest prediction of this type (a device's newest prediction of another type may
    not have one of this type: a release can target some device types only, and types arrive separately)."""
    return predictions.newest_device_predicted(connection_of(db), prediction_type)
