"""Run the active models on one batch of feature rows and describe each result as a ``Prediction``.

Each model runs once per batch over all heaters it targets (its release's ``device_types``, or
every heater), so the cost per heater stays small on a gateway serving hundreds. Outputs are
named by the release's ``output_labels`` (``probabilities`` → ``{"none": …, "heating_element": …}``);
a release without labels reports its float outputs under their own names. Only those outputs are
fetched from onnxruntime.

The per-prediction cost is kept near onnxruntime's own (bench_edge: at most twice a bare run for one
heater): one ``os.urandom`` call makes the ids of a whole batch, outputs become Python floats in one
``tolist``, and a ``Prediction`` is not validated field by field again. Everything in it is checked
once elsewhere: the release's part when the model loads (``LoadedModel.prediction_template``), heater
ids and types by telemetry parsing, times here once per batch. Non-finite outputs are left out (and
fail probation): JSON has no NaN, so one would turn into ``null`` and get the whole batch
dead-lettered at ingest.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from pydantic import TypeAdapter

from edge_agent.model_loader import LoadedModel
from shared.messages import Arm, Prediction, UtcDatetime

log = logging.getLogger(__name__)

#: hex digits of a prediction id (128 random bits, as many as a uuid4 has)
_ID_HEX = 32
_UTC_TIME = TypeAdapter(UtcDatetime | None)


@dataclass(frozen=True)
class Heater:
    device_id: str
    device_type: str


def output_columns(model: LoadedModel, outputs: list[np.ndarray], n_rows: int) -> tuple[Sequence[str], np.ndarray]:
    """Column labels and their ``(n_rows, n_columns)`` values of the outputs ``model`` serves (``run_served``)."""
    labels: list[str] = []
    blocks: list[np.ndarray] = []
    for name, output in zip(model.served_outputs, outputs, strict=True):
        values = np.asarray(output).reshape(n_rows, -1)
        if name in model.release.output_labels:
            labels.extend(model.release.output_labels[name])
        elif values.shape[1] == 1:
            labels.append(name)
        else:
            labels.extend(f"{name}[{j}]" for j in range(values.shape[1]))
        blocks.append(values)
    return labels, np.concatenate(blocks, axis=1, dtype=np.float64) if blocks else np.empty((n_rows, 0))


def _finite_outputs(labels: Sequence[str], values: list[float], model: LoadedModel, device_id: str) -> dict[str, float]:
    finite = {label: value for label, value in zip(labels, values, strict=True) if math.isfinite(value)}
    log.warning("%s %s gave non-finite outputs for %s", model.name, model.version, device_id)
    return finite


def _utc(moment: datetime | None) -> datetime | None:
    """``moment`` as the wire contract's UTC time (the agent's own clock times already are: kept as they are)."""
    return moment if moment is None or moment.tzinfo is UTC else _UTC_TIME.validate_python(moment)


def predict(
    models: Mapping[str, LoadedModel],
    features: np.ndarray,
    heaters: list[Heater],
    window_end: datetime | None,
    made_at: datetime,
) -> list[Prediction]:
    """Predictions of every active model for the heaters it targets; ``features`` is ``(n_heaters, n_features)``."""
    if len(features) != len(heaters):
        raise ValueError(f"{len(features)} feature rows for {len(heaters)} heaters")
    made_at, window_end = _utc(made_at), _utc(window_end)
    return [p for model in models.values() for p in predict_with(model, features, heaters, window_end, made_at)]


def predict_with(
    model: LoadedModel,
    features: np.ndarray,
    heaters: list[Heater],
    window_end: datetime | None,
    made_at: datetime,
    arm: Arm = Arm.CHAMPION,
    prediction_ids: Mapping[str, str] | None = None,
) -> list[Prediction]:
    """One model's predictions on ``arm`` for the heaters it targets, one run of it for them all.

    ``prediction_ids`` (by device id) makes a shadow prediction share its champion's id; otherwise
    ids are new. ``heaters`` come from validated telemetry and every other field is made here, so
    each prediction is the model's validated ``prediction_template`` with those fields replaced,
    not validated again: validation was most of the agent's cost over onnxruntime.
    """
    made_at, window_end = _utc(made_at), _utc(window_end)
    release = model.release
    if release.device_types:
        chosen = [i for i, h in enumerate(heaters) if h.device_type in release.device_types]
        rows, targeted = features[chosen], [heaters[i] for i in chosen]
    else:
        rows, targeted = features, heaters
    if not targeted:
        return []
    began = time.perf_counter()
    outputs = model.run_served(rows)
    latency_ms = (time.perf_counter() - began) * 1000.0
    if len(outputs) == 1 and model.served_labels is not None:  # the usual case, kept cheap: one labelled output
        labels, matrix = (
            model.served_labels,
            outputs[0] if outputs[0].ndim == 2 else outputs[0].reshape(len(targeted), -1),
        )
    else:
        labels, matrix = output_columns(model, outputs, len(targeted))
    ids = os.urandom(len(targeted) * _ID_HEX // 2).hex()
    template = model.prediction_template
    predictions: list[Prediction] = []
    # lengths match by construction: strict zips would only cost time here
    for row, (heater, values) in enumerate(zip(targeted, matrix.tolist(), strict=False)):
        prediction_id = prediction_ids.get(heater.device_id) if prediction_ids else None
        fields = {
            "prediction_id": prediction_id or ids[row * _ID_HEX : (row + 1) * _ID_HEX],
            "device_id": heater.device_id,
            "device_type": heater.device_type,
            "arm": arm,
            "outputs": dict(zip(labels, values, strict=False))
            if all(map(math.isfinite, values))
            else _finite_outputs(labels, values, model, heater.device_id),
            "latency_ms": latency_ms,
            "made_at": made_at,
            "feature_window_end": window_end,
        }
        # model_copy: the documented way to vary a validated model without validating again
        predictions.append(template.model_copy(update=fields))
    return predictions
