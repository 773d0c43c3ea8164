"""What every model type's trainer shares: its result, its evaluation, the selection split and the ONNX gate."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cloud.errors import Invalid
from cloud.training.data import LabelledRows
from cloud.training.onnx_export import INPUT_NAME, ExportedModel, session

Progress = Callable[[str], None]
#: How a candidate is fitted on some of the rows: ``fit(estimator, rows, index)`` returns the fitted estimator.
Fit = Callable[[object, LabelledRows, np.ndarray], object]

#: Rows used to choose among candidates; the chosen one is then fitted on every given row.
SELECTION_ROWS = 60_000
#: Share of the given rows (the latest ones) that candidates are scored on.
VALIDATION_FRACTION = 0.25
GOLDEN_ROWS = 8


def quiet(_message: str) -> None:
    """The default progress: say nothing."""


def plain_fit(estimator, rows: LabelledRows, index: np.ndarray):
    """The default fit: the indexed rows' features and targets, every row weighing the same."""
    return estimator.fit(rows.values[index], rows.targets[index])


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


def selection_split(rows: LabelledRows, fittable: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) row indexes: validation is the latest share of the rows, by time, never at random.

    Fit rows are the earlier ones ``fittable`` (a boolean mask; default all) allows, subsampled to
    ``SELECTION_ROWS`` so comparing candidates stays cheap on a large fleet. Validation keeps every latest row,
    so candidates are scored on the data as it comes.
    """
    order = np.argsort(rows.window_ends, kind="stable")
    cut = int(order.size * (1 - VALIDATION_FRACTION))
    fit, validation = order[:cut], order[cut:]
    if fittable is not None:
        fit = fit[fittable[fit]]
    if not fit.size or not validation.size:
        raise Invalid(f"{order.size} rows are too few to choose an estimator on a later validation slice")
    if fit.size > SELECTION_ROWS:
        fit = np.sort(np.random.default_rng(0).choice(fit, SELECTION_ROWS, replace=False))
    return fit, validation


@dataclass(frozen=True)
class Selection:
    chosen: str
    #: per candidate: its validation score and fit time, for the training metrics
    scores: dict[str, dict]
    #: each candidate as fitted on the earlier rows
    fitted: dict[str, object]
    #: indexes of the latest rows, which scored the candidates
    validation: np.ndarray


def _require_observed(rows: LabelledRows, index: np.ndarray) -> None:
    """Refuse rows in which a feature never has a value: nothing can be learnt of it, and scikit-learn's
    gradient boosting fails on such a column with "window shape cannot be larger than input array shape"."""
    observed = ~np.isnan(rows.values[index]).all(axis=0)  # NaN marks a missing value
    missing = [name for name, seen in zip(rows.feature_names, observed, strict=True) if not seen]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise Invalid(
            f"{len(missing)} of {len(rows.feature_names)} features have no value in the {index.size:,} rows the "
            f"candidates are fitted on ({shown}), e.g. feature windows still filling after the heaters started: "
            "train on a later or longer period"
        )


def choose(
    factories: dict[str, Callable[[], object]],
    names: list[str] | None,
    rows: LabelledRows,
    score: Callable[[object, np.ndarray, np.ndarray], float | None],
    score_name: str,
    progress: Progress,
    higher_is_better: bool = True,
    fittable: np.ndarray | None = None,
    fit: Fit = plain_fit,
) -> Selection:
    """Fit each candidate on the earlier rows (those ``fittable`` allows, with ``fit``), score it on the latest
    ones (``score(estimator, X, y)``; None when it cannot be scored, which ranks last), and pick the best.
    Unsupervised estimators ignore ``y``. One at a time: fitting two in threads on 2 cores took as long (their
    Python-level parts contend for the GIL)."""
    fit_rows, val_rows = selection_split(rows, fittable)
    _require_observed(rows, fit_rows)
    X_val, y_val = rows.values[val_rows], rows.targets[val_rows]
    scores: dict[str, dict] = {}
    fitted: dict[str, object] = {}
    for name in names or list(factories):
        began = time.perf_counter()
        fitted[name] = fit(factories[name](), rows, fit_rows)
        value = score(fitted[name], X_val, y_val)
        value = None if value is None else round(float(value), 4)
        scores[name] = {f"val_{score_name}": value, "fit_seconds": round(time.perf_counter() - began, 2)}
        progress(f"candidate {name}: validation {score_name} {value}")
    sign = 1 if higher_is_better else -1
    chosen = max(
        scores,
        key=lambda n: -np.inf if scores[n][f"val_{score_name}"] is None else sign * scores[n][f"val_{score_name}"],
    )
    progress(f"chose {chosen}; fitting on {len(rows) if fittable is None else int(fittable.sum()):,} rows")
    return Selection(chosen, scores, fitted, val_rows)


def spread(index: np.ndarray, count: int = GOLDEN_ROWS) -> np.ndarray:
    """Up to ``count`` entries of ``index``, evenly spread from its first to its last."""
    return index[np.linspace(0, index.size - 1, min(count, index.size)).astype(int)]


def trained_model(
    rows: LabelledRows,
    selection: Selection,
    fitted: tuple[object, float],
    exported: ExportedModel,
    onnx_gap: float,
    golden: object,
    output_labels: dict[str, list[str]],
    metrics: dict | None = None,
    parameters: dict | None = None,
) -> TrainedModel:
    """The result every type returns: training metrics (selection, ONNX agreement, fit time, and the type's own
    ``metrics``), the chosen estimator's plain parameters, and the span it was fitted on."""
    estimator, fit_seconds = fitted
    return TrainedModel(
        selection.chosen,
        exported,
        {
            "estimator": selection.chosen,
            "selection": selection.scores,
            "train_rows": len(rows),
            **(metrics or {}),
            "onnx_vs_sklearn_max_abs_diff": onnx_gap,
            "fit_seconds": fit_seconds,
        },
        golden,
        {"estimator": selection.chosen, "params": plain(estimator.get_params()), **(parameters or {})},
        output_labels,
        fitted_span(rows),
    )


def fit_all(factory: Callable[[], object], rows: LabelledRows, fit: Fit = plain_fit) -> tuple[object, float]:
    """The estimator fitted on every row (with ``fit``), and the seconds that took."""
    began = time.perf_counter()
    estimator = fit(factory(), rows, np.arange(len(rows)))
    return estimator, round(time.perf_counter() - began, 2)


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


def complete_rows(rows: LabelledRows) -> np.ndarray:
    """Indexes of the rows with every feature present (golden vectors travel as JSON, which has no NaN)."""
    return np.flatnonzero(np.isfinite(rows.values).all(axis=1))


def plain(params: dict) -> dict:
    """The JSON-ready part of an estimator's parameters."""
    return {k: v for k, v in params.items() if isinstance(v, str | int | float | bool | type(None))}


def fitted_span(rows: LabelledRows) -> dict:
    return {"train_from": str(rows.window_ends.min()), "train_until": str(rows.window_ends.max()), "rows": len(rows)}
