"""Cold-start training of ``component_failure``: time and held-out quality per component.

Simulates a fleet history with the firmware simulator, trains with the production pipeline
(candidate selection, fit, ONNX export, evaluation of the ONNX model on a later held-out period).
"""

from __future__ import annotations

import time
from datetime import timedelta

from cloud.training.component_failure import train_component_failure
from firmware_sim.history import generate_history

HEATERS = 1000
DAYS = 180
SEED = 7


def run() -> dict:
    began = time.perf_counter()
    history = generate_history(heaters=HEATERS, days=DAYS, seed=SEED)
    simulate_seconds = time.perf_counter() - began
    began = time.perf_counter()
    trained = train_component_failure(history, horizon=timedelta(days=14), progress=print)
    train_seconds = time.perf_counter() - began
    m = trained.metrics
    return {
        "history": {"heaters": HEATERS, "days": DAYS, "rows": int(len(history.features)), "seed": SEED},
        "simulate_seconds": round(simulate_seconds, 2),
        "training_seconds_incl_selection_and_export": round(train_seconds, 2),
        "final_fit_seconds": m["fit_seconds"],
        "estimator": m["estimator"],
        "selection": m["selection"],
        "holdout": {"rows": m["holdout_rows"], "from": trained.split["holdout_from"]},
        "mean_roc_auc": m["mean_roc_auc"],
        "mean_pr_auc": m["mean_pr_auc"],
        "per_component": m["per_component"],
        "onnx_vs_sklearn_max_abs_diff": m["onnx_vs_sklearn_max_abs_diff"],
    }
