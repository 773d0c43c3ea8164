"""Per-arm observations of an experiment: each prediction with an outcome, scored by the experiment's metric.

Arms come from the ``predictions`` table: the champion arm is rows with arm ``champion`` and the champion's
version; the challenger arm is rows with arm ``challenger`` (split mode) or ``shadow`` (shadow mode, the same
``prediction_id`` as the champion's row) and the challenger's version. Outcomes join by ``prediction_id``;
a prediction with several outcomes counts once, by its latest, so a second visit cannot weigh double.

Both metrics are "lower is better":
- ``error_rate`` (``component_failure``): a prediction is wrong when its most probable class names the
  outcome's component and the technician found it fine, or does not name it and the component had failed
  or was replaced. Observations are 0/1.
- ``absolute_error`` (``usage_pattern``): ``|predicted litres − measured litres|`` over the next 24 h.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlite_utils

from cloud.data import predictions as stored_predictions
from cloud.data.connections import connection_of
from cloud.errors import Invalid
from cloud.training.usage_outputs import LABEL as USAGE_LABEL
from shared.messages import Arm, OutcomeResult, PredictionType

CHAMPION, CHALLENGER = Arm.CHAMPION.value, Arm.CHALLENGER.value
#: the arms a challenger serves on: split mode's and shadow mode's
CHALLENGERS = (CHALLENGER, Arm.SHADOW.value)
_FAILED = {OutcomeResult.FAILED.value, OutcomeResult.REPLACED.value}


@dataclass(frozen=True)
class Metric:
    name: str
    #: 0/1 observations (a rate) rather than a continuous quantity
    binary: bool
    score: Callable[[dict[str, float], dict[str, Any]], float | None]


def _failure_error(outputs: dict[str, float], outcome: dict[str, Any]) -> float | None:
    if not outputs or outcome["component"] is None or outcome["result"] is None:
        return None
    predicted_to_fail = max(outputs, key=outputs.__getitem__) == outcome["component"]
    return float(predicted_to_fail != (outcome["result"] in _FAILED))


def _usage_error(outputs: dict[str, float], outcome: dict[str, Any]) -> float | None:
    if outcome["value"] is None or USAGE_LABEL not in outputs:
        return None
    return abs(outputs[USAGE_LABEL] - outcome["value"])


METRICS: dict[str, Metric] = {
    PredictionType.COMPONENT_FAILURE.value: Metric("error_rate", True, _failure_error),
    PredictionType.USAGE_PATTERN.value: Metric("absolute_error", False, _usage_error),
}


def metric_for(prediction_type: str) -> Metric:
    try:
        return METRICS[prediction_type]
    except KeyError:
        known = ", ".join(sorted(METRICS))
        raise Invalid(
            f"no A/B metric for {prediction_type!r} predictions (they have no outcome to score): use {known}"
        ) from None


def arm_observations(
    db: sqlite_utils.Database, experiment: dict[str, Any], since: str | None = None, until: str | None = None
) -> dict[str, np.ndarray]:
    """``{"champion": array, "challenger": array}`` of metric values for predictions made in ``[since, until]``.

    Defaults to the experiment's running time (start to stop); ``since`` lets a caller score the champion's
    history for planning.
    """
    metric = metric_for(experiment["prediction_type"])
    since = experiment["started_at"] if since is None else since
    until = experiment["stopped_at"] if until is None else until
    arms = [([CHAMPION], experiment["champion_version"]), (CHALLENGERS, experiment["challenger_version"])]
    rows = stored_predictions.experiment_outcomes(connection_of(db), experiment["model_name"], arms, since, until)
    latest: dict[tuple[str, str], float] = {}
    for prediction_id, arm, outputs_json, component, result, value in rows:
        scored = metric.score(json.loads(outputs_json), {"component": component, "result": result, "value": value})
        if scored is not None:
            latest[(prediction_id, CHAMPION if arm == CHAMPION else CHALLENGER)] = scored
    values: dict[str, list[float]] = {CHAMPION: [], CHALLENGER: []}
    for (_prediction_id, arm), scored in latest.items():
        values[arm].append(scored)
    return {arm: np.asarray(found, dtype=np.float64) for arm, found in values.items()}
