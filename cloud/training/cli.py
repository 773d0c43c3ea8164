"""``iotsphere cloud train``: cold-start training from a simulated history file."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from pathlib import Path

import click

from cloud.cli_options import config_from_options, data_dir_option
from cloud.config import CloudConfig
from cloud.registry import MLModelRegistry
from cloud.storage import open_database
from cloud.training.artifacts import write_artifacts
from cloud.training.component_failure import CANDIDATES, train_component_failure
from shared.messages import PredictionType


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def train_from_history_file(
    history_path: Path, config: CloudConfig, horizon_days: int = 14, candidates: list[str] | None = None, echo=print
) -> Path:
    """Train ``component_failure`` from a history file; return the artifact folder of the new version."""
    from firmware_sim.history import load_history

    began = time.perf_counter()
    history = load_history(history_path)
    echo(f"loaded {len(history.features):,} feature rows of {len(history.device_ids):,} heaters from {history_path}")
    trained = train_component_failure(
        history, horizon=timedelta(days=horizon_days), candidates=candidates, progress=echo
    )
    registry = MLModelRegistry(open_database(config.database_path))
    folder = write_artifacts(
        config.artifacts_dir,
        registry,
        model_name=PredictionType.COMPONENT_FAILURE.value,
        prediction_type=PredictionType.COMPONENT_FAILURE,
        trained=trained,
        feature_names=list(history.feature_names),
        feature_set_version=history.feature_set_version,
        lineage={
            "dataset": {"kind": "simulated_history", "path": str(history_path), "sha256": _sha256_file(history_path)}
        },
    )
    m = trained.metrics
    echo(f"{m['estimator']}: mean ROC AUC {m['mean_roc_auc']}, mean PR AUC {m['mean_pr_auc']} on the held-out period")
    for component, scores in m["per_component"].items():
        echo(
            f"  {component:16s} roc_auc={scores.get('roc_auc')} pr_auc={scores.get('pr_auc')} "
            f"detected {scores['detected']}/{scores['failures']} median lead {scores['median_lead_hours']} h"
        )
    echo(f"wrote {folder} in {time.perf_counter() - began:.1f}s")
    return folder


@click.command("train")
@click.option(
    "--history",
    "history_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="History file written by 'iotsphere sim history'.",
)
@click.option(
    "--model",
    "model_name",
    type=click.Choice([PredictionType.COMPONENT_FAILURE.value]),
    default=PredictionType.COMPONENT_FAILURE.value,
    show_default=True,
    help="Which model to train.",
)
@click.option("--horizon-days", default=14, show_default=True, help="Predict failures within this many days.")
@click.option(
    "--candidate",
    "candidates",
    multiple=True,
    type=click.Choice(list(CANDIDATES)),
    help="Limit the estimators compared (default: all).",
)
@data_dir_option
def train_command(
    history_path: Path, model_name: str, horizon_days: int, candidates: tuple[str, ...], data_dir: Path | None
) -> None:
    """Train a model from simulated history: time-based split, ONNX export, golden vectors, registry entry.

    Prints the held-out metrics and the artifact folder to pass to 'iotsphere cloud release'.
    """
    config = config_from_options(data_dir)
    try:
        folder = train_from_history_file(history_path, config, horizon_days, list(candidates) or None, click.echo)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(folder))
