"""The exported ONNX, run in onnxruntime, answers as the fitted scikit-learn model on float32 features."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor, IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline

from cloud.training.onnx_export import export, session
from edge_agent.model_checks import check_model_bytes


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


@pytest.mark.parametrize("max_features", [1.0, 0.5])
def test_isolation_forest_exports_as_one_tree_ensemble_scoring_as_scikit_learn(max_features):
    # skl2onnx's own converter made ~40 nodes a tree (4,006 for 100 trees, 24.5 MB in a gateway's onnxruntime) and
    # refused trees grown on a subset of the features
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(size=(3000, 6)), rng.normal(6.0, 1.0, size=(30, 6))]).astype(np.float32)
    X[rng.random(X.shape) < 0.05] = np.nan
    forest = make_pipeline(
        SimpleImputer(strategy="median"),
        IsolationForest(n_estimators=50, max_samples=256, max_features=max_features, random_state=0),
    ).fit(X)
    exported = export(forest, X.shape[1], negate=("scores",))
    operators = [node.op_type for node in onnx.load_from_string(exported.onnx_bytes).graph.node]
    assert operators.count("TreeEnsembleRegressor") == 1 and len(operators) < 15, operators
    check_model_bytes(exported.onnx_bytes)  # the gateway's static checks accept it
    label, score = session(exported.onnx_bytes).run(["label", "scores"], {"features": X})
    decision = forest.decision_function(X)
    assert np.abs(score.ravel() + decision).max() < 1e-5
    clear = np.abs(decision) > 1e-5  # float32 sums may tip a row lying on the boundary
    assert (label.ravel() == forest.predict(X))[clear].all() and (forest.predict(X) == -1).sum() > 0
