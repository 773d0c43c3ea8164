"""Write a trained model's artifacts (ONNX, release file, metrics) and register the version.

Files are written to a temporary folder and renamed into place, so a failed run leaves nothing
half-written, and the registry row is added only after the files exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from cloud.monitoring.reference import store_reference
from cloud.registry import MLModelRegistry
from cloud.training.models import Evaluation, TrainedModel
from shared.director import format_time
from shared.messages import PredictionType
from shared.release import ReleaseFile, model_target_path

CODE_VERSION = "0.1.0"


def write_artifacts(
    artifacts_dir: Path,
    registry: MLModelRegistry,
    model_name: str,
    prediction_type: PredictionType,
    trained: TrainedModel,
    feature_names: list[str],
    feature_set_version: str,
    lineage: dict,
    device_types: list[str] | None = None,
    evaluation: Evaluation | None = None,
    dataset_id: str | None = None,
    reference: dict | None = None,
    *,
    actor: str | None = None,
) -> Path:
    """Return the folder holding ``model.onnx``, ``release.json`` and ``metrics.json``.

    The metrics are the training-time ones plus, given an ``evaluation``, its figures under ``holdout`` and
    its ``score_name`` and ``score`` at the top, where the champion/challenger gate reads them. A
    ``dataset_id`` (the feature store dataset trained on) goes into the lineage. A drift ``reference``
    (``cloud.monitoring.reference.build_reference`` of the training rows) is written as ``reference.json`` and kept
    with the version, so drift checks never recompute it. The registry audits the registration as ``actor``.
    """
    version = registry.next_version(model_name)
    onnx_bytes = trained.exported.onnx_bytes
    sha256 = hashlib.sha256(onnx_bytes).hexdigest()
    metrics = dict(trained.metrics)
    if evaluation is not None:
        metrics.update(score_name=evaluation.score_name, score=evaluation.score, holdout=evaluation.to_dict())
    full_lineage = {
        **lineage,
        **({"dataset_id": dataset_id} if dataset_id else {}),
        "estimator": trained.estimator_name,
        "training_parameters": trained.parameters,
        "split": trained.split,
        "code_version": CODE_VERSION,
    }
    release = ReleaseFile(
        model_name=model_name,
        model_version=version,
        prediction_type=prediction_type,
        feature_set_version=feature_set_version,
        feature_names=feature_names,
        model_target=model_target_path(model_name, version),
        model_sha256=sha256,
        model_length=len(onnx_bytes),
        inputs=trained.exported.inputs,
        outputs=trained.exported.outputs,
        output_labels=trained.output_labels,
        golden=trained.golden,
        device_types=device_types or [],
        lineage=full_lineage,
        created_at=format_time(datetime.now(UTC)),
    )
    final = artifacts_dir / model_name / version
    staging = final.with_name(f".{version}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, data in (
        ("model.onnx", onnx_bytes),
        ("release.json", release.to_json()),
        ("metrics.json", json.dumps(metrics, indent=1).encode()),
        *([("reference.json", json.dumps(reference).encode())] if reference is not None else []),
    ):
        with open(staging / name, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(staging, final)
    registry.register_model(
        model_name,
        version,
        final,
        {
            "prediction_type": prediction_type.value,
            "feature_set_version": feature_set_version,
            "device_types": device_types or [],
            "metrics": metrics,
            "lineage": full_lineage,
            "model_sha256": sha256,
        },
        actor=actor,
    )
    if reference is not None:
        store_reference(registry.db, model_name, version, reference)
    return final
