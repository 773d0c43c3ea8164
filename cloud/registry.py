"""MLModelRegistry: model versions with their lineage and status, over the storage layer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from cloud.storage import iso


class UnknownModel(LookupError):
    pass


class MLModelRegistry:
    """Versions are numbered 1, 2, 3… per model name; each row keeps metrics and lineage as JSON."""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db

    def next_version(self, model_name: str) -> str:
        rows = self.db.execute("SELECT model_version FROM models WHERE model_name = ?", [model_name]).fetchall()
        numbers = [int(v) for (v,) in rows if v.isdigit()]
        return str(max(numbers, default=0) + 1)

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

    def get_version(self, model_name: str, model_version: str) -> dict:
        rows = list(self.db["models"].rows_where("model_name = ? AND model_version = ?", [model_name, model_version]))
        if not rows:
            raise UnknownModel(f"no model {model_name!r} version {model_version!r}")
        return rows[0]
