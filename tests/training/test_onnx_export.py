"""The exported ONNX, run in onnxruntime, answers as the fitted scikit-learn model on float32 features."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from cloud.training.onnx_export import export, session


def _one_float32_step_apart(n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """A feature taking two values one float32 step apart (float32 sums of sensor readings leave such pairs), which
    decides the label, and a noise feature with a few missing values."""
    rng = np.random.default_rng(0)
    low = np.nextafter(np.float32(60.0), np.float32(100))  # odd last bit: the float64 midpoint rounds up to `high`
    high = np.nextafter(low, np.float32(100))
    X = np.column_stack([np.where(rng.random(n) < 0.5, low, high), rng.normal(size=n)]).astype(np.float32)
    X[rng.random(n) < 0.05, 1] = np.nan
    y = ((X[:, 0] == high) ^ (rng.random(n) < 0.1)).astype(int)
    return X, y


@pytest.mark.parametrize("booster", [HistGradientBoostingClassifier, HistGradientBoostingRegressor])
def test_histogram_gradient_boosting_splits_send_float32_values_where_scikit_learn_does(booster):
    # skl2onnx rounds each float64 split threshold to the nearest float32: here that is the upper value itself,
    # and every row holding it went the other way (probability gap 0.75 before the fix)
    X, y = _one_float32_step_apart()
    model = booster(max_iter=20, random_state=0).fit(X, y)
    classifier = booster is HistGradientBoostingClassifier
    exported = export(model, X.shape[1], options={"zipmap": False} if classifier else None)
    outputs = session(exported.onnx_bytes).run(None, {"features": X})
    onnx_values = outputs[1] if classifier else outputs[0].ravel()
    sklearn_values = model.predict_proba(X) if classifier else model.predict(X)
    assert np.abs(onnx_values - sklearn_values).max() < 1e-5
