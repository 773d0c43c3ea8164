"""Run the active models on one batch of feature rows and describe each result as a ``Prediction``.

Each model runs once per batch over all heaters it targets (its release's ``device_types``, or
every heater), so the cost per heater stays small on a gateway serving hundreds. Outputs are
named by the release's ``output_labels`` (``probabilities`` → ``{"none": …, "heating_element": …}``);
a release without labels reports its float outputs under their own names.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from edge_agent.model_loader import LoadedModel
from shared.messages import Arm, Prediction
from shared.release import ReleaseFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Heater:
    device_id: str
    device_type: str


def output_columns(release: ReleaseFile, outputs: Mapping[str, np.ndarray], n_rows: int) -> dict[str, np.ndarray]:
    """Output name per column → ``(n_rows,)`` values, named by ``output_labels`` where the release has them."""
    columns: dict[str, np.ndarray] = {}
    if release.output_labels:
        for name, labels in release.output_labels.items():
            values = outputs[name].reshape(n_rows, -1)
            columns.update({label: values[:, j] for j, label in enumerate(labels)})
        return columns
    for name, array in outputs.items():
        if array.dtype.kind != "f":
            continue
        values = array.reshape(n_rows, -1)
        if values.shape[1] == 1:
            columns[name] = values[:, 0]
        else:
            columns.update({f"{name}[{j}]": values[:, j] for j in range(values.shape[1])})
    return columns


def predict(
    models: Mapping[str, LoadedModel],
    features: np.ndarray,
    heaters: list[Heater],
    window_end: datetime,
    made_at: datetime,
) -> list[Prediction]:
    """Predictions of every active model for the heaters it targets; ``features`` is ``(n_heaters, n_features)``."""
    predictions: list[Prediction] = []
    for model in models.values():
        release = model.release
        targeted = [
            i for i, h in enumerate(heaters) if not release.device_types or h.device_type in release.device_types
        ]
        if not targeted:
            continue
        began = time.perf_counter()
        outputs = model.run(features[targeted])
        latency_ms = (time.perf_counter() - began) * 1000.0
        columns = output_columns(release, outputs, len(targeted))
        for row, index in enumerate(targeted):
            values = {label: float(column[row]) for label, column in columns.items()}
            finite = {label: value for label, value in values.items() if math.isfinite(value)}
            if len(finite) < len(values):
                log.warning("%s %s gave non-finite outputs for %s", model.name, model.version, heaters[index].device_id)
            predictions.append(
                Prediction(
                    prediction_id=uuid.uuid4().hex,
                    device_id=heaters[index].device_id,
                    device_type=heaters[index].device_type,
                    prediction_type=release.prediction_type,
                    model_name=model.name,
                    model_version=model.version,
                    arm=Arm.CHAMPION,
                    outputs=finite,
                    latency_ms=latency_ms,
                    made_at=made_at,
                    feature_window_end=window_end,
                )
            )
    return predictions
