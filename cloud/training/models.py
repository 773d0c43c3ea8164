"""One trainer interface over the model types: ``train`` fits and exports, ``evaluate`` scores an ONNX model.

The pipeline (cold start, scheduled retraining, champion/challenger) calls only these two; each type's own
module knows its estimators, outputs and metrics.
"""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType

from cloud.errors import Invalid
from cloud.training import anomaly, component_failure, usage_pattern
from cloud.training.common import Evaluation, Progress, TrainedModel, quiet
from cloud.training.data import LabelledRows
from cloud.training.reliability import DEFAULT_BUDGET
from shared.messages import PredictionType

__all__ = ["Evaluation", "TrainedModel", "candidates_for", "evaluate", "train"]

_MODULES: dict[PredictionType, ModuleType] = {
    PredictionType.COMPONENT_FAILURE: component_failure,
    PredictionType.USAGE_PATTERN: usage_pattern,
    PredictionType.ANOMALY: anomaly,
}


def _module(prediction_type: PredictionType, rows: LabelledRows | None = None) -> ModuleType:
    prediction_type = PredictionType(prediction_type)
    if rows is not None and rows.prediction_type != prediction_type:
        raise ValueError(
            f"rows labelled for {rows.prediction_type.value} cannot train or score {prediction_type.value}"
        )
    return _MODULES[prediction_type]


def candidates_for(prediction_type: PredictionType) -> list[str]:
    """The estimator names ``train`` may be limited to for this type."""
    return list(_module(prediction_type).CANDIDATES)


def train(
    prediction_type: PredictionType,
    rows: LabelledRows,
    progress: Progress = quiet,
    candidates: list[str] | None = None,
    horizon: timedelta = timedelta(days=14),
) -> TrainedModel:
    """Fit on all ``rows`` (the estimator chosen on their latest part), export ONNX, gate its agreement with
    scikit-learn and record golden vectors. No held-out evaluation: that is ``evaluate`` on other rows."""
    module = _module(prediction_type, rows)
    unknown = sorted(set(candidates or []) - set(module.CANDIDATES))
    if unknown:
        raise Invalid(f"unknown {prediction_type} candidates {unknown}; choose from {list(module.CANDIDATES)}")
    if not len(rows):
        raise Invalid(f"no {prediction_type} rows to train on")
    return module.train(rows, progress=progress, candidates=candidates, horizon=horizon)


def evaluate(
    prediction_type: PredictionType,
    onnx_bytes: bytes,
    output_labels: dict[str, list[str]],
    rows: LabelledRows,
    training: LabelledRows | None = None,
    budget: float = DEFAULT_BUDGET,
) -> Evaluation:
    """Score the ONNX model (in onnxruntime) on ``rows``; the same function scores champion and challenger.
    component_failure reads recall at ``budget`` false dispatches per 100 heater-months, and ``training`` (the rows
    the model was fitted on) lets it fit the baselines that learn beside it."""
    module = _module(prediction_type, rows)
    if module is component_failure:
        return module.evaluate(onnx_bytes, output_labels, rows, training, budget)
    return module.evaluate(onnx_bytes, output_labels, rows)
