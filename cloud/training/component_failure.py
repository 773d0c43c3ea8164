"""``component_failure``: which component, if any, is the first to fail within the horizon.

One multiclass model: for each feature row, the probability that each component is the first to fail within
the horizon (class ``none``: no failure). The estimator is chosen by measurement among candidates that convert
cleanly to ONNX, on the latest part of the training rows. Per-component alert thresholds (best F1 on that
validation slice) and the horizon go into the ONNX metadata, so ``evaluate`` can report lead times for any
model, champion or challenger, from its bytes alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from cloud.errors import Invalid
from cloud.training import reliability
from cloud.training.common import (
    GOLDEN_ROWS,
    Evaluation,
    Progress,
    TrainedModel,
    check_agreement,
    choose,
    complete_rows,
    fit_all,
    onnx_outputs,
    quiet,
    trained_model,
)
from cloud.training.data import LabelledRows
from cloud.training.labels import CLASSES, NO_FAILURE
from cloud.training.onnx_export import export, golden_vectors, metadata, session

OUTPUT = "probabilities"
#: Share of the healthy rows (class ``none``, ~99 % of them) that candidates and the final model are fitted on;
#: every failure row is kept, and validation, thresholds and the ONNX gate see every row. A quarter fits 3-4x
#: faster and scored the same (within noise) on held-out periods of an 860- and a 1,000-heater history.
HEALTHY_SHARE = 0.25
_HEALTHY = CLASSES.index(NO_FAILURE)
#: Candidates compared on the validation slice; each converts with skl2onnx and keeps NaN handling.
CANDIDATES: dict[str, Callable[[], object]] = {
    # Regularised and class-balanced: with rare failure classes the defaults overfit them (validation
    # PR AUC ~0.01); balancing raised mean PR AUC from ~0.58 to ~0.77 on a 500-heater history.
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(
        max_iter=60,
        learning_rate=0.1,
        max_leaf_nodes=15,
        # a leaf of 12 thinned rows holds about as many healthy rows as 50 unthinned ones did (leaves of 50
        # thinned rows lowered validation mean PR AUC from 0.89 to 0.83 on the 860-heater bench history)
        min_samples_leaf=round(50 * HEALTHY_SHARE),
        l2_regularization=1.0,
        class_weight="balanced",
        early_stopping=False,
        random_state=0,
    ),
    # Imputed first: skl2onnx does not carry the forest's learned NaN directions (ONNX and scikit-learn
    # disagreed by up to 0.23 in probability); bootstrap half-samples keep the fit and the file small. 30 trees
    # fit in half the time of 60 and scored within 0.002 held-out PR AUC of them on a 1,000-heater history.
    "random_forest": lambda: make_pipeline(
        SimpleImputer(strategy="median"),
        RandomForestClassifier(
            n_estimators=30, max_depth=12, min_samples_leaf=10, max_samples=0.5, n_jobs=2, random_state=0
        ),
    ),
    "logistic_regression": lambda: make_pipeline(
        SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500, C=1.0)
    ),
}
#: The shipped ONNX model must agree with the fitted one this closely (in probability), or training fails.
MAX_ONNX_DISAGREEMENT = 1e-3


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


def _at_shipped_thresholds(fleet: reliability.Fleet, proba: np.ndarray, thresholds: dict[str, float]) -> dict:
    """Per component, at the model's own alert thresholds: failures a full horizon into the period, how many a
    dispatch came before, and the median hours of warning (``reliability.outcome`` defines each)."""
    result = {}
    for index, name in enumerate(CLASSES[1:], start=1):
        threshold = thresholds.get(name, 0.5)
        caught = reliability.outcome(fleet, name, proba[:, index], threshold)
        leads = caught.lead_days * 24
        result[name] = {
            "failures": int(caught.failures.sum()),
            "detected": int(caught.caught.sum()),
            "median_lead_hours": round(float(np.median(leads)), 1) if leads.size else None,
            "threshold": threshold,
        }
    return result


def _logistic_baseline(training: LabelledRows, rows: LabelledRows) -> np.ndarray:
    """Component scores on ``rows`` of logistic regression fitted on ``training`` alone, as a trainer would."""
    fitted, _ = fit_all(CANDIDATES["logistic_regression"], training.take(_thinned(training.targets)), _fit)
    return _full_proba(fitted, rows.values)[:, 1:]


def _expand(proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Probabilities with one column per entry of CLASSES, whichever classes the model knows."""
    full = np.zeros((proba.shape[0], len(CLASSES)), dtype=np.float64)
    full[:, classes] = proba
    return full


def _full_proba(estimator, X: np.ndarray) -> np.ndarray:
    return _expand(estimator.predict_proba(X), _classes_of(estimator))


def _classes_of(estimator) -> np.ndarray:
    return np.asarray(estimator.classes_, dtype=np.int64)


def _thinned(targets: np.ndarray) -> np.ndarray:
    """Mask of the rows to fit on: every failure row and a fixed random ``HEALTHY_SHARE`` of the healthy ones."""
    return (targets != _HEALTHY) | (np.random.default_rng(0).random(targets.size) < HEALTHY_SHARE)


def _fit(estimator, rows: LabelledRows, index: np.ndarray):
    """Fit on the indexed (thinned) rows, each healthy one weighing ``1 / HEALTHY_SHARE`` so the class balance
    the estimator learns is the whole data's; an estimator balancing classes by their counts needs no weights."""
    X, y = rows.values[index], rows.targets[index]
    step, final = estimator.steps[-1] if isinstance(estimator, Pipeline) else ("", estimator)
    if getattr(final, "class_weight", None) == "balanced":
        return estimator.fit(X, y)
    weight = np.where(y == _HEALTHY, 1 / HEALTHY_SHARE, 1.0)
    return estimator.fit(X, y, **{f"{step}__sample_weight" if step else "sample_weight": weight})


def train(
    rows: LabelledRows,
    progress: Progress = quiet,
    candidates: list[str] | None = None,
    horizon: timedelta = timedelta(days=14),
) -> TrainedModel:
    """Choose the estimator on the latest rows, fit it on all of them, export and gate the ONNX model."""
    if set(np.unique(rows.targets).tolist()) <= {0}:
        raise Invalid("the training rows hold no failure: simulate more heaters or days")
    X, y = rows.values, rows.targets
    fittable = _thinned(y)
    val_proba: dict[int, np.ndarray] = {}  # per fitted candidate, kept to set the thresholds without predicting again

    def score(estimator, X_val: np.ndarray, y_val: np.ndarray) -> float | None:
        val_proba[id(estimator)] = proba = _full_proba(estimator, X_val)
        return _mean_score(_per_class_scores(y_val, proba), "pr_auc")

    selection = choose(
        CANDIDATES,
        candidates,
        rows,
        score,
        "mean_pr_auc",
        progress,
        fittable=fittable,
        fit=_fit,
    )
    chosen = selection.chosen
    val_rows = selection.validation
    thresholds = _best_f1_thresholds(y[val_rows], val_proba[id(selection.fitted[chosen])])
    fitted = fit_all(CANDIDATES[chosen], rows.take(fittable), _fit)
    estimator = fitted[0]
    classes = _classes_of(estimator)
    exported = export(
        estimator,
        X.shape[1],
        options={"zipmap": False},
        metadata={
            "alert_thresholds": json.dumps(thresholds),
            "horizon_seconds": str(int(horizon.total_seconds())),
        },
    )
    onnx_proba = session(exported.onnx_bytes).run([OUTPUT], {"features": X[val_rows]})[0]
    gap = check_agreement(
        chosen, _expand(onnx_proba, classes), _full_proba(estimator, X[val_rows]), MAX_ONNX_DISAGREEMENT, "probability"
    )

    complete = complete_rows(rows)
    positives = complete[y[complete] > 0][: GOLDEN_ROWS // 2]
    negatives = complete[y[complete] == 0][: GOLDEN_ROWS - positives.size]
    golden = golden_vectors(exported.onnx_bytes, X[np.concatenate([positives, negatives])])
    labels = {OUTPUT: [CLASSES[i] for i in classes]}
    extra = {"thresholds": thresholds, "fit_rows": int(fittable.sum()), "healthy_share": HEALTHY_SHARE}
    return trained_model(rows, selection, fitted, exported, gap, golden, labels, extra, {"horizon_days": horizon.days})


def evaluate(
    onnx_bytes: bytes,
    output_labels: dict[str, list[str]],
    rows: LabelledRows,
    training: LabelledRows | None = None,
    budget: float = reliability.DEFAULT_BUDGET,
) -> Evaluation:
    """Per-component ROC and PR AUC of the ONNX model on ``rows``; where failures are known, lead times at its
    own thresholds and the reliability figures (``reliability.report``) beside the baselines, those that learn
    fitted on ``training`` (the slice the model was trained on) when given."""
    labelled = rows.take(rows.targets >= 0)
    if not (labelled.targets > 0).any() or not (labelled.targets == 0).any():
        raise Invalid("the rows hold no usable component_failure targets: both failures and healthy rows needed")
    names = output_labels.get(OUTPUT)
    if not names or not set(names) <= set(CLASSES):
        raise ValueError(f"output_labels must name the {OUTPUT!r} columns from {CLASSES}, got {output_labels}")
    proba = onnx_outputs(onnx_bytes, OUTPUT, labelled)
    full = _expand(proba.reshape(len(labelled), -1), np.array([CLASSES.index(n) for n in names], dtype=np.int64))
    per_component = _per_class_scores(labelled.targets, full)
    mean_pr_auc = _mean_score(per_component, "pr_auc")
    metrics = {
        "mean_roc_auc": _mean_score(per_component, "roc_auc"),
        "mean_pr_auc": mean_pr_auc,
        "per_component": per_component,
        "from": str(labelled.window_ends.min()),
        "until": str(labelled.window_ends.max()),
    }
    if labelled.failures is not None:
        props = metadata(onnx_bytes)
        thresholds = json.loads(props.get("alert_thresholds", "{}"))
        horizon = timedelta(seconds=int(props.get("horizon_seconds", 14 * 86400)))
        fleet = reliability.Fleet.of(labelled, horizon)
        for name, entry in _at_shipped_thresholds(fleet, full, thresholds).items():
            per_component[name].update(entry)
        trained_on = None if training is None else training.take(training.targets >= 0)
        metrics["reliability"] = reliability.report(labelled, full, horizon, budget, trained_on, _logistic_baseline)
    return Evaluation("mean_pr_auc", mean_pr_auc or 0.0, metrics, len(labelled))
