"""``iotsphere cloud train``: cold-start training of one model type from a simulated history file."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
import sqlite_utils

from cloud.cli_options import config_from_options, data_dir_option
from cloud.config import CloudConfig
from cloud.feature_store import FeatureStore, ObservedFailure
from cloud.storage import open_database
from cloud.training.data import history_findings
from shared.messages import PredictionType

if TYPE_CHECKING:
    from cloud.training.data import LabelSource
    from cloud.training.models import Evaluation
    from firmware_sim.history import History


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _report(evaluation: Evaluation, echo) -> None:
    """The held-out figures, one line overall and one per component where the type has them."""
    m = evaluation.metrics
    summary = {k: v for k, v in m.items() if not isinstance(v, dict)}
    echo(f"held-out {evaluation.score_name} {evaluation.score} on {evaluation.rows:,} rows: {summary}")
    for component, scores in m.get("per_component", {}).items():
        echo(f"  {component:16s} " + " ".join(f"{k}={v}" for k, v in scores.items()))
    if "reliability" in m:
        from cloud.training.reliability import summary_lines

        for line in summary_lines(m["reliability"], m.get("data")):
            echo(line)


def store_history(db: sqlite_utils.Database, history: History) -> tuple[int, int]:
    """Keep a history in the feature store, as ingest would have had the fleet run live: its feature rows (with
    each heater's type) and what technicians found (``data.history_findings``: dated by the visit, received
    late, some missed, worn parts replaced) as the outcomes that label them, so the training pipeline trains on
    the labels a utility has. The simulator's ground truth stays in the history file, for evaluation
    (``--labels ground-truth``). Idempotent; returns the new feature rows and new findings."""
    store = FeatureStore(db)
    rows = store.store_feature_rows(
        history.device_ids[history.row_device].tolist(),
        history.window_end,
        history.features,
        list(history.feature_names),
        history.feature_set_version,
        dict(zip(history.device_ids.tolist(), history.device_types.tolist(), strict=True)),
    )
    findings = store.store_component_failures(
        ObservedFailure(f.device_id, f.component.value, f.observed_at, f.received_at, f.result)
        for f in history_findings(history)
    )
    return rows, findings


def train_from_history_file(
    history_path: Path,
    config: CloudConfig,
    horizon_days: int = 14,
    candidates: list[str] | None = None,
    echo=print,
    prediction_type: PredictionType = PredictionType.COMPONENT_FAILURE,
    labels: LabelSource = "ground_truth",
) -> Path:
    """Train ``prediction_type`` from a history file, evaluate it on a later held-out period, write and register
    its artifacts; return the artifact folder of the new version. ``labels``: failures from the simulator's ground
    truth or from technicians' findings (cloud.training.data.history_failures)."""
    # here, not at import: scikit-learn and ONNX take seconds to load, and `cloud train --help` needs neither
    from cloud.monitoring.reference import build_reference
    from cloud.registry import MLModelRegistry
    from cloud.training.artifacts import write_artifacts
    from cloud.training.data import rows_from_history, time_split
    from cloud.training.models import evaluate, train
    from cloud.training.reliability import data_line
    from firmware_sim.calibration import calibration
    from firmware_sim.history import load_history

    began = time.perf_counter()
    history = load_history(history_path)
    echo(f"loaded {len(history.features):,} feature rows of {len(history.device_ids):,} heaters from {history_path}")
    fleet = calibration(history.calibration)
    data = {"calibration": fleet.name, "acceleration": round(fleet.acceleration, 2), "labels": labels}
    echo(data_line(data))
    db = open_database(config.database_url)
    try:
        new_rows, new_findings = store_history(db, history)
        echo(f"feature store: {new_rows:,} new feature rows, {new_findings:,} new technician findings")
        horizon = timedelta(days=horizon_days)
        rows = rows_from_history(history, prediction_type, horizon, labels)
        train_rows, holdout, holdout_from = time_split(rows, gap=horizon)
        echo(f"{prediction_type}: train {len(train_rows):,} rows, hold out {len(holdout):,} from {holdout_from}")
        trained = train(prediction_type, train_rows, progress=echo, candidates=candidates, horizon=horizon)
        evaluation: Evaluation | None = None
        try:
            onnx_bytes = trained.exported.onnx_bytes
            evaluation = evaluate(prediction_type, onnx_bytes, trained.output_labels, holdout, train_rows)
            evaluation.metrics["data"] = data  # read every figure with the fleet it came from
        except ValueError as exc:  # e.g. no failure fell in a small fleet's held-out weeks: the model still ships
            echo(f"not evaluated on the held-out period from {holdout_from}: {exc}")
        trained.split.update(holdout_from=str(holdout_from), holdout_until=str(holdout.window_ends.max()))
        dataset = {
            "kind": "simulated_history",
            "path": str(history_path),
            "sha256": _sha256_file(history_path),
            **data,
        }
        folder = write_artifacts(
            config.artifacts_dir,
            MLModelRegistry(db),
            model_name=prediction_type.value,
            prediction_type=prediction_type,
            trained=trained,
            feature_names=list(history.feature_names),
            feature_set_version=history.feature_set_version,
            lineage={"dataset": dataset},
            evaluation=evaluation,
            reference=build_reference(train_rows, dict(zip(history.device_ids, history.device_types, strict=True))),
            actor=config.actor,
        )
    finally:
        db.close()
    echo(f"{trained.estimator_name}, trained on {len(train_rows):,} rows")
    if evaluation is not None:
        _report(evaluation, echo)
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
    type=click.Choice([t.value for t in PredictionType]),
    default=PredictionType.COMPONENT_FAILURE.value,
    show_default=True,
    help="Which model type to train.",
)
@click.option("--horizon-days", default=14, show_default=True, help="Predict failures within this many days.")
@click.option(
    "--labels",
    type=click.Choice(["ground-truth", "technician"]),
    default="ground-truth",
    show_default=True,
    help="component_failure: label from the simulator's ground truth (to measure what label noise costs), or "
    "from what technicians found (dated by the visit, received late, some missed, some found degraded: "
    "docs/evaluation.md). The feature store, which retraining reads, holds technicians' findings either way.",
)
@click.option(
    "--candidate",
    "candidates",
    multiple=True,
    help="Limit the estimators compared (default: all of the model type's).",
)
@data_dir_option
def train_command(
    history_path: Path,
    model_name: str,
    horizon_days: int,
    labels: str,
    candidates: tuple[str, ...],
    data_dir: Path | None,
) -> None:
    """Train a model from simulated history: time-based split, ONNX export, golden vectors, registry entry.

    Prints the held-out metrics and the artifact folder to pass to 'iotsphere cloud release'.
    """
    from cloud.training.models import candidates_for  # not at import: see train_from_history_file

    prediction_type = PredictionType(model_name)
    unknown = sorted(set(candidates) - set(candidates_for(prediction_type)))
    if unknown:
        raise click.BadParameter(
            f"{unknown} are not {model_name} estimators; choose from {candidates_for(prediction_type)}",
            param_hint="--candidate",
        )
    config = config_from_options(data_dir)
    try:
        folder = train_from_history_file(
            history_path,
            config,
            horizon_days,
            list(candidates) or None,
            click.echo,
            prediction_type,
            labels.replace("-", "_"),  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(folder))
