"""Registry operations with 10,000 versions registered (target: under 5 ms each, median).

Measures the registry's own database work. Signing and publishing the director documents that a promotion
or rollback sends are measured in bench_release; here the rollout accepts and sends nothing.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from cloud.registry import MLModelRegistry
from cloud.releases.director import Issued
from cloud.storage import open_database

VERSIONS = 10_000
NAME = "component_failure"
REPEATS = 50


class _NoRollout:
    def check(self, model_name: str, version: str) -> None:
        return None

    def direct_production(self, db, model_name: str, version: str, device_type: str) -> Issued:
        return Issued([], [])

    def deliver(self, db) -> None:
        return None


def _register(registry: MLModelRegistry, version: str) -> None:
    registry.register_model(
        NAME,
        version,
        f"/artifacts/{NAME}/{version}",
        {
            "prediction_type": NAME,
            "feature_set_version": "v1",
            "metrics": {"mean_roc_auc": 0.9},
            "lineage": {"dataset_id": f"ds-{version}"},
            "model_sha256": f"{int(version):064x}",
        },
    )
    registry.db["models"].update(
        (NAME, version),
        {"status": "released", "release_target": f"models/{NAME}/{version}/release.json", "targets_version": 2},
    )


def _median_ms(operation) -> float:
    times = []
    for i in range(REPEATS):
        began = time.perf_counter()
        operation(i)
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 3)


def run() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        db = open_database(Path(folder) / "iotsphere.db")
        registry = MLModelRegistry(db)
        began = time.perf_counter()
        with db.conn:
            for number in range(1, VERSIONS + 1):
                _register(registry, str(number))
        fill_seconds = time.perf_counter() - began
        rollout = _NoRollout()
        registry.promote_model_to_production(NAME, "1", actor="bench", reason="baseline", rollout=rollout)
        figures = {
            "next_version": _median_ms(lambda i: registry.next_version(NAME)),
            "register_model": _median_ms(lambda i: _register(registry, str(VERSIONS + 1 + i))),
            "get_version": _median_ms(lambda i: registry.get_version(NAME, str(1 + i * 97))),
            "get_active_model": _median_ms(lambda i: registry.get_active_model(NAME, "nwp500-50")),
            "promote_model_to_production": _median_ms(
                lambda i: registry.promote_model_to_production(
                    NAME, str(2 + i), actor="bench", reason="bench", rollout=rollout
                )
            ),
            "rollback_model": _median_ms(
                lambda i: registry.rollback_model(
                    NAME, to_version=str(2 + i), actor="bench", reason="bench", rollout=rollout
                )
            ),
            "history": _median_ms(lambda i: registry.history(NAME)),
        }
        db.conn.close()
    return {
        "versions": VERSIONS,
        "fill_seconds": round(fill_seconds, 2),
        "median_ms": figures,
        "target_ms_max": 5.0,
        "met": all(value < 5.0 for value in figures.values()),
    }
