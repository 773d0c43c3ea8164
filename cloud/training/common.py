"""What every model type's trainer shares: its result, its evaluation, the selection split and the ONNX gate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cloud.training.data import LabelledRows
from cloud.training.onnx_export import INPUT_NAME, ExportedModel, session

Progress = Callable[[str], None]

#: Rows used to choose among candidates; the chosen one is then fitted on every given row.
SELECTION_ROWS = 60_000
#: Share of the given rows (the latest ones) that candidates are scored on.
VALIDATION_FRACTION = 0.25
GOLDEN_ROWS = 8


def quiet(_message: str) -> None:
    """The default progress: say nothing."""


@dataclass
class TrainedModel:
    estimator_name: str
    exported: ExportedModel
    #: training-time figures (selection, fit time, ONNX agreement); held-out figures live in an ``Evaluation``
    metrics: dict
    golden: object
    parameters: dict
    #: what each column of a served output means: the release's ``output_labels``
    output_labels: dict[str, list[str]] = field(default_factory=dict)
    #: the time span the model was fitted on
    split: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    #: the one number the champion/challenger gate compares
    score_name: str
    #: higher is better (errors are negated)
    score: float
    #: every figure, JSON-ready
    metrics: dict
    rows: int

    def to_dict(self) -> dict:
        return {"score_name": self.score_name, "score": self.score, "rows": self.rows, **self.metrics}


def selection_split(rows: LabelledRows) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) row indexes: validation is the latest share of the rows, by time, never at random.

    Fit rows are subsampled to ``SELECTION_ROWS`` so comparing candidates stays cheap on a large fleet.
    """
    order = np.argsort(rows.window_ends, kind="stable")
    cut = int(order.size * (1 - VALIDATION_FRACTION))
    fit, validation = order[:cut], order[cut:]
    if not fit.size or not validation.size:
        raise ValueError(f"{order.size} rows are too few to choose an estimator on a later validation slice")
    if fit.size > SELECTION_ROWS:
        fit = np.sort(np.random.default_rng(0).choice(fit, SELECTION_ROWS, replace=False))
    return fit, validation


def onnx_outputs(onnx_bytes: bytes, output: str, rows: LabelledRows) -> np.ndarray:
    """One output of the ONNX model for every row, run in onnxruntime; ValueError on a width mismatch."""
    sess = session(onnx_bytes)
    [meta] = [i for i in sess.get_inputs() if i.name == INPUT_NAME] or [None]
    if meta is None:
        raise ValueError(f"the model has no input named {INPUT_NAME!r}")
    width = meta.shape[-1]
    if isinstance(width, int) and width != rows.values.shape[1]:
        raise ValueError(
            f"the model takes {width} features but the rows have {rows.values.shape[1]} ({rows.feature_set_version})"
        )
    values = np.ascontiguousarray(rows.values, dtype=np.float32)
    return np.asarray(sess.run([output], {INPUT_NAME: values})[0])


def check_agreement(name: str, onnx_values: np.ndarray, sklearn_values: np.ndarray, limit: float, unit: str) -> float:
    """The largest ONNX-vs-scikit-learn difference; ValueError (nothing ships) above ``limit``."""
    gap = float(np.abs(np.asarray(onnx_values, np.float64) - np.asarray(sklearn_values, np.float64)).max())
    if not gap <= limit:  # NaN fails too
        raise ValueError(
            f"the ONNX conversion of {name} disagrees with scikit-learn by {gap:.3g} in {unit} "
            f"(limit {limit}); not shipping it"
        )
    return gap


def complete_rows(rows: LabelledRows, index: np.ndarray) -> np.ndarray:
    """The rows of ``index`` with every feature present (golden vectors travel as JSON, which has no NaN)."""
    return index[np.isfinite(rows.values[index]).all(axis=1)]


def plain(params: dict) -> dict:
    """The JSON-ready part of an estimator's parameters."""
    return {k: v for k, v in params.items() if isinstance(v, str | int | float | bool | type(None))}


def fitted_span(rows: LabelledRows) -> dict:
    return {"train_from": str(rows.window_ends.min()), "train_until": str(rows.window_ends.max()), "rows": len(rows)}
