"""Training per model type on ~100k rows: time to train (candidate selection, fit, ONNX export, agreement gate,
golden vectors), evaluate, write the artifacts and sign the release into a temporary TUF repository, and the
held-out figures. Target: train + convert + release under 10 s per type.

Simulates a fleet history with the firmware simulator and runs the production path of ``iotsphere cloud train``
(``rows_from_history`` → ``time_split`` → ``train`` → ``evaluate`` → ``write_artifacts``) and of
``iotsphere cloud release`` (``tuf_repo.add_release``), with real keys, metadata files and SQLite. The fleet is the
``accelerated`` calibration (a field fleet of this size holds too few failures to train on in 60 days), labelled
from the simulator's ground truth: the results name both and the acceleration factor, so that no held-out figure
is read as a field one (docs/evaluation.md has those).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from threadpoolctl import threadpool_limits

from cloud.config import CloudConfig
from cloud.registry import MLModelRegistry
from cloud.releases import tuf_repo
from cloud.storage import open_database
from cloud.training.artifacts import write_artifacts
from cloud.training.data import rows_from_history, time_split
from cloud.training.models import evaluate, train
from firmware_sim.calibration import ACCELERATED
from firmware_sim.history import generate_history
from shared.messages import PredictionType

#: about 100k training rows per type once a quarter of the period is held out behind a 14-day gap
HEATERS = 860
DAYS = 60
SEED = 7
#: a fixed start: a history ending today would move its seasons, and every figure, with the day it runs
START = datetime(2026, 1, 1, tzinfo=UTC)
CALIBRATION = ACCELERATED
LABELS = "ground_truth"
HORIZON = timedelta(days=14)
PASSPHRASE = "bench-passphrase"
TARGET_SECONDS = 10.0


def _one_type(config: CloudConfig, registry: MLModelRegistry, history, prediction_type: PredictionType) -> dict:
    rows = rows_from_history(history, prediction_type, HORIZON, LABELS)
    train_rows, holdout, holdout_from = time_split(rows, gap=HORIZON)
    began = time.perf_counter()
    trained = train(prediction_type, train_rows, print, horizon=HORIZON)
    trained_at = time.perf_counter()
    evaluation = evaluate(prediction_type, trained.exported.onnx_bytes, trained.output_labels, holdout)
    evaluation.metrics["data"] = _data()
    evaluated_at = time.perf_counter()
    artifact_dir = write_artifacts(
        config.artifacts_dir,
        registry,
        prediction_type.value,
        prediction_type,
        trained,
        list(history.feature_names),
        history.feature_set_version,
        {"dataset": {"kind": "simulated_history", "seed": SEED, **_data()}},
        evaluation=evaluation,
    )
    written_at = time.perf_counter()
    release_json, onnx_bytes = (artifact_dir / "release.json").read_bytes(), (artifact_dir / "model.onnx").read_bytes()
    tuf_repo.add_release(config, PASSPHRASE, release_json, onnx_bytes)
    released_at = time.perf_counter()
    total = (trained_at - began) + (released_at - evaluated_at)
    return {
        "train_rows": len(train_rows),
        # component_failure fits on every failure row and a share of the healthy ones
        "fit_rows": trained.metrics.get("fit_rows", len(train_rows)),
        "holdout_rows": len(holdout),
        "holdout_from": str(holdout_from),
        "estimator": trained.estimator_name,
        "selection": trained.metrics["selection"],
        "train_seconds_incl_selection_export_gate": round(trained_at - began, 2),
        "final_fit_seconds": trained.metrics["fit_seconds"],
        "onnx_bytes": len(onnx_bytes),
        "onnx_vs_sklearn_max_abs_diff": trained.metrics["onnx_vs_sklearn_max_abs_diff"],
        "write_artifacts_seconds": round(written_at - evaluated_at, 2),
        "release_seconds": round(released_at - written_at, 2),
        "train_convert_release_seconds": round(total, 2),
        "within_target": total < TARGET_SECONDS,
        "evaluate_seconds": round(evaluated_at - trained_at, 2),
        "holdout": evaluation.to_dict(),
    }


def _data() -> dict:
    """What every figure of this benchmark must be read with (as a cold start records it in ``metrics.data``)."""
    return {"calibration": CALIBRATION.name, "acceleration": round(CALIBRATION.acceleration, 2), "labels": LABELS}


def run() -> dict:
    began = time.perf_counter()
    history = generate_history(heaters=HEATERS, days=DAYS, seed=SEED, start=START, calibration=CALIBRATION)
    figures: dict = {
        "history": {
            "heaters": HEATERS,
            "days": DAYS,
            "start": START.isoformat(),
            "rows": int(len(history.features)),
            "seed": SEED,
            **_data(),
        },
        "calibration": CALIBRATION.describe(),
        "simulate_seconds": round(time.perf_counter() - began, 2),
        "target_train_convert_release_seconds": TARGET_SECONDS,
        "models": {},
    }
    with tempfile.TemporaryDirectory() as folder:
        config = CloudConfig(data_dir=Path(folder), topic_prefix=f"bench-{uuid.uuid4().hex[:8]}/iotsphere/v1")
        tuf_repo.init_repository(config, PASSPHRASE)
        db = open_database(config.database_path)
        try:
            # one OpenMP thread, as the demo trains: on this 2-core machine shared with other jobs, two threads
            # spin waiting for each other (iotsphere.demo.cold_start.train)
            with threadpool_limits(limits=1):
                for prediction_type in PredictionType:
                    figures["models"][prediction_type.value] = _one_type(
                        config, MLModelRegistry(db), history, prediction_type
                    )
        finally:
            db.conn.close()
    return figures
