"""``usage_pattern``: the hot water (litres) a heater will draw in the next 24 hours, a regression.

Labels are what was drawn after each row: the simulator's ground truth at cold start, sensor outcomes in the
cloud. The estimator is chosen by mean absolute error on the latest rows; the ONNX model serves one column,
``variable`` (skl2onnx's name for a regressor's output), labelled ``litres_next_24h``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cloud.errors import Invalid
from cloud.training.common import (
    Evaluation,
    Progress,
    TrainedModel,
    check_agreement,
    choose,
    complete_rows,
    fit_all,
    onnx_outputs,
    quiet,
    spread,
    trained_model,
)
from cloud.training.data import LabelledRows
from cloud.training.onnx_export import export, golden_vectors, session
from cloud.training.usage_outputs import LABEL, OUTPUT

#: No gradient boosting: skl2onnx rounds its float64 split thresholds to float32, so a value between the two
#: lands on the other branch; with leaves in litres that moved single predictions by up to 7.8 l.
CANDIDATES: dict[str, Callable[[], object]] = {
    # Imputed first, for the same reason as the component forest: skl2onnx drops learned NaN directions.
    "random_forest": lambda: make_pipeline(
        SimpleImputer(strategy="median"),
        # a third of the features per split and half-samples: as accurate here, several times faster to fit
        RandomForestRegressor(
            n_estimators=30,
            max_depth=12,
            min_samples_leaf=20,
            max_features=0.33,
            max_samples=0.5,
            n_jobs=2,
            random_state=0,
        ),
    ),
    "ridge": lambda: make_pipeline(SimpleImputer(), StandardScaler(), Ridge(alpha=1.0)),
}
#: The shipped ONNX model must agree with the fitted one this closely, in litres (ONNX trees run in float32).
MAX_ONNX_DISAGREEMENT_LITRES = 0.05
#: MAPE counts only days with at least this much drawn: near-zero days would make a percentage meaningless.
MAPE_MIN_LITRES = 10.0


def _predict(estimator, X: np.ndarray) -> np.ndarray:
    return np.asarray(estimator.predict(X), dtype=np.float64).ravel()


def train(
    rows: LabelledRows,
    progress: Progress = quiet,
    candidates: list[str] | None = None,
    horizon: timedelta = timedelta(days=1),
) -> TrainedModel:
    """Choose the estimator by validation MAE on the latest rows, fit it on all of them, export and gate it.

    ``horizon`` is unused (the target is always the next 24 hours); it is accepted so every type trains alike.
    """
    X, y = rows.values, rows.targets.astype(np.float64)
    if not np.isfinite(y).all():
        raise Invalid("usage_pattern targets must all be litres: leave out rows without a measured next 24 h")
    selection = choose(
        CANDIDATES,
        candidates,
        rows,
        lambda estimator, X_val, y_val: mean_absolute_error(y_val, _predict(estimator, X_val)),
        "mae_litres",
        progress,
        higher_is_better=False,
    )
    chosen = selection.chosen
    val_rows = selection.validation
    fitted = fit_all(CANDIDATES[chosen], rows)
    exported = export(fitted[0], X.shape[1])
    onnx_litres = session(exported.onnx_bytes).run([OUTPUT], {"features": X[val_rows]})[0].ravel()
    gap = check_agreement(chosen, onnx_litres, _predict(fitted[0], X[val_rows]), MAX_ONNX_DISAGREEMENT_LITRES, "litres")
    golden = golden_vectors(exported.onnx_bytes, X[spread(complete_rows(rows))])
    return trained_model(rows, selection, fitted, exported, gap, golden, {OUTPUT: [LABEL]})


def evaluate(onnx_bytes: bytes, output_labels: dict[str, list[str]], rows: LabelledRows) -> Evaluation:
    """MAE, RMSE, MAPE, bias and R² of the ONNX model's litres on ``rows``; the score is the negated MAE."""
    if output_labels.get(OUTPUT) != [LABEL]:
        raise ValueError(f"a usage_pattern model serves {{{OUTPUT!r}: [{LABEL!r}]}}, got {output_labels}")
    usable = rows.take(np.isfinite(rows.targets.astype(np.float64)))
    if not len(usable):
        raise ValueError("the rows hold no usable usage_pattern targets (litres drawn in the next 24 h)")
    y = usable.targets.astype(np.float64)
    predicted = onnx_outputs(onnx_bytes, OUTPUT, usable).astype(np.float64).ravel()
    mae = float(mean_absolute_error(y, predicted))
    busy = y >= MAPE_MIN_LITRES
    metrics = {
        "mae_litres": round(mae, 3),
        "rmse_litres": round(float(np.sqrt(mean_squared_error(y, predicted))), 3),
        "mape": round(float(np.mean(np.abs(predicted[busy] - y[busy]) / y[busy])), 4) if busy.any() else None,
        "bias_litres": round(float(np.mean(predicted - y)), 3),
        "r2": round(float(r2_score(y, predicted)), 4) if y.size > 1 else None,
        "mean_actual_litres": round(float(y.mean()), 3),
        "from": str(usable.window_ends.min()),
        "until": str(usable.window_ends.max()),
    }
    return Evaluation("neg_mae_litres", -round(mae, 3), metrics, len(usable))
