"""Cold-start training of ``component_failure`` from labelled history.

One multiclass model: for each feature row, the probability that each component is the first to
fail within the horizon (class ``none``: no failure). The estimator is chosen by measurement among
candidates that convert cleanly to ONNX, on a time-based validation slice; evaluation is on a later,
held-out period, never a random split.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cloud.training.labels import CLASSES, NO_FAILURE, failure_times, label_rows
from cloud.training.onnx_export import ExportedModel, export, golden_vectors, session

Progress = Callable[[str], None]

#: Candidates compared on the validation slice; each converts with skl2onnx and keeps NaN handling.
CANDIDATES: dict[str, Callable[[], object]] = {
    # Regularised and class-balanced: with rare failure classes the defaults overfit them (validation
    # PR AUC ~0.01); balancing raised mean PR AUC from ~0.58 to ~0.77 on a 500-heater history.
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(
        max_iter=60,
        learning_rate=0.1,
        max_leaf_nodes=15,
        min_samples_leaf=50,
        l2_regularization=1.0,
        class_weight="balanced",
        early_stopping=False,
        random_state=0,
    ),
    # Imputed first: skl2onnx does not carry the forest's learned NaN directions (ONNX and scikit-learn
    # disagreed by up to 0.23 in probability); bootstrap half-samples keep the fit and the file small.
    "random_forest": lambda: make_pipeline(
        SimpleImputer(strategy="median"),
        RandomForestClassifier(
            n_estimators=60, max_depth=12, min_samples_leaf=10, max_samples=0.5, n_jobs=2, random_state=0
        ),
    ),
    "logistic_regression": lambda: make_pipeline(
        SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500, C=1.0)
    ),
}
#: Rows used to choose among candidates; the chosen one is then fitted on the whole training period.
SELECTION_ROWS = 60_000
#: The shipped ONNX model must agree with the fitted one this closely, or training fails.
MAX_ONNX_DISAGREEMENT = 1e-3
GOLDEN_ROWS = 8


@dataclass
class TrainedModel:
    estimator_name: str
    exported: ExportedModel
    metrics: dict
    golden: object
    parameters: dict
    #: what each column of the ``probabilities`` output means
    output_labels: list[str] = field(default_factory=list)
    split: dict = field(default_factory=dict)


def _per_class_scores(y: np.ndarray, proba: np.ndarray) -> dict[str, dict]:
    scores = {}
    for index, name in enumerate(CLASSES):
        if name == NO_FAILURE:
            continue
        positives = int((y == index).sum())
        entry: dict = {"positives": positives}
        if 0 < positives < len(y):
            entry["roc_auc"] = round(float(roc_auc_score(y == index, proba[:, index])), 4)
            entry["pr_auc"] = round(float(average_precision_score(y == index, proba[:, index])), 4)
        scores[name] = entry
    return scores


def _mean_score(scores: dict[str, dict], key: str) -> float | None:
    """Mean over the components that could be scored (both classes present); None if none could."""
    values = [s[key] for s in scores.values() if key in s]
    return round(float(np.mean(values)), 4) if values else None


def _mean_pr_auc(scores: dict[str, dict]) -> float:
    return _mean_score(scores, "pr_auc") or 0.0


def _best_f1_thresholds(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Per component, the probability threshold that maximises F1 (chosen on validation data)."""
    thresholds = {}
    for index, name in enumerate(CLASSES[1:], start=1):
        if not (y == index).any():
            thresholds[name] = 0.5
            continue
        precision, recall, cut = precision_recall_curve(y == index, proba[:, index])
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        thresholds[name] = round(float(cut[int(np.argmax(f1[:-1]))]), 4) if cut.size else 0.5
    return thresholds


def _lead_times(
    history, proba: np.ndarray, rows: np.ndarray, thresholds: dict[str, float], horizon: timedelta, start: np.datetime64
) -> dict[str, dict]:
    """For failures in the held-out period: share alerted in advance and median hours of warning."""
    failures = failure_times(history.failures, history.device_ids)
    horizon_s = np.timedelta64(int(horizon.total_seconds()), "s")
    device, when = history.row_device[rows], history.window_end[rows]
    result: dict[str, dict] = {}
    for index, name in enumerate(CLASSES[1:], start=1):
        leads, missed = [], 0
        mine = failures.label == index
        for f_device, f_time in zip(failures.device[mine], failures.time[mine], strict=True):
            if f_time < start + horizon_s:
                continue
            before = (device == f_device) & (when < f_time) & (when >= f_time - horizon_s)
            alerted = before & (proba[:, index] >= thresholds[name])
            if alerted.any():
                leads.append((f_time - when[alerted].min()) / np.timedelta64(1, "h"))
            elif before.any():
                missed += 1
        total = len(leads) + missed
        result[name] = {
            "failures": total,
            "detected": len(leads),
            "median_lead_hours": round(float(np.median(leads)), 1) if leads else None,
        }
    return result


def train_component_failure(
    history,
    horizon: timedelta = timedelta(days=14),
    holdout_fraction: float = 0.25,
    candidates: list[str] | None = None,
    progress: Progress = lambda _msg: None,
) -> TrainedModel:
    """Label, split by time, choose the estimator, fit, evaluate on the held-out period, export."""
    failures = failure_times(history.failures, history.device_ids)
    observed_until = history.window_end.max()
    labels = label_rows(history.row_device, history.window_end, failures, horizon, observed_until)
    start, end = history.window_end.min(), history.window_end.max()
    split = start + ((end - start) * (1 - holdout_fraction)).astype("timedelta64[s]")
    horizon_s = np.timedelta64(int(horizon.total_seconds()), "s")
    labelled = labels >= 0
    # A gap of one horizon keeps training labels from looking into the held-out period.
    train_rows = np.flatnonzero(labelled & (history.window_end + horizon_s <= split))
    test_rows = np.flatnonzero(labelled & (history.window_end >= split))
    if not train_rows.size or not test_rows.size:
        raise ValueError(
            f"not enough labelled history to split by time: {train_rows.size} training and {test_rows.size} "
            f"held-out rows; simulate more days (at least ~{2 * horizon.days + 14})"
        )
    classes_seen = set(np.unique(labels[train_rows]).tolist())
    if classes_seen == {0}:
        raise ValueError("the training period holds no failure: simulate more heaters or days")
    progress(
        f"labelled {labelled.sum():,} of {labels.size:,} rows (censored {(~labelled).sum():,}); "
        f"train {train_rows.size:,} rows before {split}, hold out {test_rows.size:,} after"
    )
    X, y = history.features, labels

    # Choose by measurement: fit each candidate on the earlier part of the training period, score
    # on the later part (time-based again), keep the best mean PR AUC over components.
    cut = int(train_rows.size * 0.75)
    order = np.argsort(history.window_end[train_rows], kind="stable")
    fit_rows, val_rows = train_rows[order[:cut]], train_rows[order[cut:]]
    if fit_rows.size > SELECTION_ROWS:
        fit_rows = np.sort(np.random.default_rng(0).choice(fit_rows, SELECTION_ROWS, replace=False))
    selection: dict[str, dict] = {}
    for name in candidates or list(CANDIDATES):
        began = time.perf_counter()
        estimator = CANDIDATES[name]().fit(X[fit_rows], y[fit_rows])
        proba = _full_proba(estimator, X[val_rows])
        score = _mean_pr_auc(_per_class_scores(y[val_rows], proba))
        selection[name] = {"val_mean_pr_auc": round(score, 4), "fit_seconds": round(time.perf_counter() - began, 2)}
        progress(f"candidate {name}: validation mean PR AUC {score:.3f}")
    chosen = max(selection, key=lambda n: selection[n]["val_mean_pr_auc"])
    progress(f"chose {chosen}; fitting on {train_rows.size:,} rows")

    began = time.perf_counter()
    estimator = CANDIDATES[chosen]().fit(X[train_rows], y[train_rows])
    fit_seconds = time.perf_counter() - began
    thresholds = _best_f1_thresholds(y[val_rows], _full_proba(estimator, X[val_rows]))
    options = {"zipmap": False}
    exported = export(estimator, X.shape[1], options=options)

    # Evaluate what ships: the ONNX model in onnxruntime, on the held-out period.
    onnx_proba = session(exported.onnx_bytes).run(["probabilities"], {"features": X[test_rows]})[0]
    onnx_proba = _expand(onnx_proba, estimator)
    sklearn_gap = float(np.abs(onnx_proba - _full_proba(estimator, X[test_rows])).max())
    if sklearn_gap > MAX_ONNX_DISAGREEMENT:
        raise ValueError(
            f"the ONNX conversion of {chosen} disagrees with scikit-learn by {sklearn_gap:.3g} in probability "
            f"(limit {MAX_ONNX_DISAGREEMENT}); not shipping it"
        )
    per_component = _per_class_scores(y[test_rows], onnx_proba)
    leads = _lead_times(history, onnx_proba, test_rows, thresholds, horizon, split)
    for name, entry in per_component.items():
        entry.update(leads[name], threshold=thresholds[name])

    complete = test_rows[np.isfinite(X[test_rows]).all(axis=1)]
    positives = complete[y[complete] > 0][: GOLDEN_ROWS // 2]
    negatives = complete[y[complete] == 0][: GOLDEN_ROWS - positives.size]
    golden = golden_vectors(exported.onnx_bytes, X[np.concatenate([positives, negatives])])

    metrics = {
        "estimator": chosen,
        "selection": selection,
        "holdout_rows": int(test_rows.size),
        "train_rows": int(train_rows.size),
        "mean_roc_auc": _mean_score(per_component, "roc_auc"),
        "mean_pr_auc": _mean_score(per_component, "pr_auc"),
        "per_component": per_component,
        "onnx_vs_sklearn_max_abs_diff": sklearn_gap,
        "fit_seconds": round(fit_seconds, 2),
    }
    parameters = {"estimator": chosen, "params": _plain(estimator.get_params()), "horizon_days": horizon.days}
    split_info = {
        "train_until": str(split - horizon_s),
        "holdout_from": str(split),
        "holdout_until": str(end),
        "observed_until": str(observed_until),
    }
    labels_out = [CLASSES[i] for i in _classes_of(estimator)]
    return TrainedModel(chosen, exported, metrics, golden, parameters, labels_out, split_info)


def _expand(proba: np.ndarray, estimator) -> np.ndarray:
    """Probabilities with one column per entry of CLASSES, whichever classes the training data held."""
    full = np.zeros((proba.shape[0], len(CLASSES)), dtype=np.float64)
    full[:, _classes_of(estimator)] = proba
    return full


def _full_proba(estimator, X: np.ndarray) -> np.ndarray:
    return _expand(estimator.predict_proba(X), estimator)


def _classes_of(estimator) -> np.ndarray:
    return np.asarray(estimator.classes_, dtype=np.int64)


def _plain(params: dict) -> dict:
    return {k: v for k, v in params.items() if isinstance(v, str | int | float | bool | type(None))}
