"""Cold start for the demo: signing keys and TUF repository, simulated history, training, signed releases.

The same functions the ``iotsphere cloud init / train / release`` commands call, in one go.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from threadpoolctl import threadpool_limits

from cloud.config import CloudConfig
from cloud.releases import first_release, tuf_repo
from cloud.releases.service import ReleaseService
from cloud.storage import open_database
from cloud.training.cli import train_from_history_file
from shared.messages import PredictionType

Echo = Callable[[str], None]
#: the held-out figures the demo shows per model type (classification; regression in litres; anomaly ranking)
HEADLINE_METRICS = ("mean_roc_auc", "mean_pr_auc", "mae_litres", "mape", "failure_roc_auc")


@dataclass(frozen=True)
class Released:
    model_name: str
    model_version: str
    estimator: str
    metrics: dict


def init_trust(config: CloudConfig, passphrase: str) -> None:
    """Keys (encrypted with ``passphrase``) and version 1 of every TUF role."""
    logging.getLogger("tuf").setLevel(logging.WARNING)  # fresh metadata logs "No signature for keyid": expected
    tuf_repo.init_repository(config, passphrase)


def simulate_history(path: Path, heaters: int, days: int, seed: int, echo: Echo) -> None:
    """A labelled fleet history ending at the start of today, saved to ``path`` by ``iotsphere sim history``.

    It runs as a child process in a session of its own: the simulation fans out to a process pool, which
    hangs when Ctrl-C reaches every process at once; here only the demo sees Ctrl-C and ends the whole group.
    """
    command = [sys.executable, "-c", "from iotsphere.cli import main; main()", "sim", "history"]
    command += ["--heaters", str(heaters), "--days", str(days), "--seed", str(seed), "--out", str(path)]
    command += ["--calibration", "accelerated"]  # the fast fleet the demo needs, named as such
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        output, _ = child.communicate()
    except BaseException:  # Ctrl-C above all: stop the simulation and its pool before going on
        _end_group(child)
        raise
    for line in output.splitlines():
        echo(f"  {line}")
    if child.returncode != 0:
        raise RuntimeError(f"simulating the history failed (exit {child.returncode})")


def _end_group(child: subprocess.Popen, grace_s: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


def train(
    history_path: Path, config: CloudConfig, prediction_type: PredictionType, candidates: list[str] | None, echo: Echo
) -> Path:
    """Train one model type; return its artifact folder (model.onnx + release.json).

    One OpenMP thread: measured on this 2-core machine while other jobs ran, gradient boosting on the default
    history took 72 s with two threads (they spin waiting for each other) and 31 s with one.
    """
    with threadpool_limits(limits=1):
        return train_from_history_file(
            history_path,
            config,
            candidates=candidates,
            echo=lambda line: echo(f"  {line}"),
            prediction_type=prediction_type,
        )


def release(config: CloudConfig, passphrase: str, artifact_dir: Path) -> Released:
    """Sign the artifacts into TUF and make them production, as ``iotsphere cloud release`` does: a model's first
    release, so a retrained challenger has a champion to beat; no gateway is known yet, so this sets the fleet's
    desired state, which the publisher hands out."""
    db = open_database(config.database_url)
    try:
        signed = first_release.release(ReleaseService(config, passphrase), db, artifact_dir, actor="demo").signed
    finally:
        db.close()
    metrics = json.loads((artifact_dir / "metrics.json").read_text())
    return Released(
        model_name=signed.model_name,
        model_version=signed.version,
        estimator=str(metrics.get("estimator", "")),
        metrics={k: v for k, v in metrics.get("holdout", {}).items() if k in HEADLINE_METRICS},
    )
