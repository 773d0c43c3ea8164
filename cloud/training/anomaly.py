"""``anomaly``: an unsupervised outlier score per feature row (IsolationForest).

The export (``cloud.training.isolation_forest_onnx``, one tree ensemble) gives an isolation forest skl2onnx's two
outputs, ``label`` (1 normal, -1 outlier) and ``scores`` (scikit-learn's ``decision_function``: lower is
stranger). The exported model serves ``scores`` negated, labelled ``anomaly_score``: higher is stranger, and above
0 the forest calls the row an outlier. Failure labels are not used to fit; where known they judge the score: does
it rank heaters about to fail higher (ROC AUC)?
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import make_pipeline

from cloud.training.common import (
    Evaluation,
    Progress,
    TrainedModel,
    check_agreement,
    choose,
    fit_all,
    onnx_outputs,
    quiet,
    spread,
    trained_model,
)
from cloud.training.data import LabelledRows
from cloud.training.labels import CLASSES
from cloud.training.onnx_export import export, golden_vectors, session

OUTPUT = "scores"
LABEL = "anomaly_score"
#: Imputed first: an isolation forest takes no NaN. They differ in how many rows each tree sees.
CANDIDATES: dict[str, Callable[[], object]] = {
    "isolation_forest": lambda: make_pipeline(
        SimpleImputer(strategy="median"), IsolationForest(n_estimators=100, max_samples=256, random_state=0)
    ),
    "isolation_forest_wide": lambda: make_pipeline(
        SimpleImputer(strategy="median"),
        IsolationForest(n_estimators=100, max_samples=2048, random_state=0),
    ),
}
#: The shipped ONNX score must agree with scikit-learn's this closely, or training fails.
MAX_ONNX_DISAGREEMENT = 1e-3


def _anomaly_score(estimator, X: np.ndarray) -> np.ndarray:
    return -np.asarray(estimator.decision_function(X), dtype=np.float64)


def _ranking(targets: np.ndarray, score: np.ndarray) -> dict | None:
    """How well the score ranks rows a failure follows within the horizon above healthy ones; None if it cannot."""
    known = targets >= 0
    failing = targets[known] > 0
    if not 0 < failing.sum() < failing.size:
        return None
    return {
        "failure_roc_auc": round(float(roc_auc_score(failing, score[known])), 4),
        "failure_pr_auc": round(float(average_precision_score(failing, score[known])), 4),
        "failing_rows": int(failing.sum()),
        "labelled_rows": int(failing.size),
    }


def train(
    rows: LabelledRows,
    progress: Progress = quiet,
    candidates: list[str] | None = None,
    horizon: timedelta = timedelta(days=14),
) -> TrainedModel:
    """Fit each candidate on the earlier rows; keep the one whose score best ranks later failures (when any are
    known, else the first); fit it on all rows, export with the score negated and gate the ONNX model."""
    X = rows.values
    selection = choose(
        CANDIDATES,
        candidates,
        rows,
        lambda estimator, X_val, y_val: (_ranking(y_val, _anomaly_score(estimator, X_val)) or {}).get(
            "failure_roc_auc"
        ),
        "failure_roc_auc",
        progress,
    )
    chosen = selection.chosen
    val_rows = selection.validation
    fitted = fit_all(CANDIDATES[chosen], rows)
    estimator = fitted[0]
    exported = export(estimator, X.shape[1], negate=(OUTPUT,))
    onnx_score = session(exported.onnx_bytes).run([OUTPUT], {"features": X[val_rows]})[0].ravel()
    gap = check_agreement(chosen, onnx_score, _anomaly_score(estimator, X[val_rows]), MAX_ONNX_DISAGREEMENT, "score")
    complete = np.isfinite(X[val_rows]).all(axis=1)
    order = np.argsort(onnx_score[complete])  # golden rows from the most normal to the strangest
    golden = golden_vectors(exported.onnx_bytes, X[val_rows[complete][spread(order)]])
    outliers = {"validation_outlier_share": round(float((onnx_score > 0).mean()), 4)}
    return trained_model(rows, selection, fitted, exported, gap, golden, {OUTPUT: [LABEL]}, outliers)


def evaluate(onnx_bytes: bytes, output_labels: dict[str, list[str]], rows: LabelledRows) -> Evaluation:
    """Whether the ONNX score ranks rows a failure follows above healthy ones: ROC AUC overall and per component."""
    if output_labels.get(OUTPUT) != [LABEL]:
        raise ValueError(f"an anomaly model serves {{{OUTPUT!r}: [{LABEL!r}]}}, got {output_labels}")
    labelled = rows.take(rows.targets >= 0)
    if not (labelled.targets > 0).any() or not (labelled.targets == 0).any():
        raise ValueError(
            "the rows hold no usable anomaly targets: scoring an anomaly model needs rows with known failure "
            "labels, both failing and healthy"
        )
    score = onnx_outputs(onnx_bytes, OUTPUT, labelled).astype(np.float64).ravel()
    overall = _ranking(labelled.targets, score)
    per_component = {}
    for index, name in enumerate(CLASSES[1:], start=1):
        mine = (labelled.targets == index) | (labelled.targets == 0)
        per_component[name] = _ranking(np.where(labelled.targets[mine] == index, 1, 0), score[mine]) or {
            "failing_rows": int((labelled.targets == index).sum())
        }
    metrics = {
        **overall,
        "outlier_share": round(float((score > 0).mean()), 4),
        "per_component": per_component,
        "from": str(labelled.window_ends.min()),
        "until": str(labelled.window_ends.max()),
    }
    return Evaluation("failure_roc_auc", overall["failure_roc_auc"], metrics, len(labelled))
