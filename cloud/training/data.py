"""Labelled rows of one prediction type, from a simulated history or a recorded dataset, and the time split.

Every trainer and evaluator reads this one shape, so cold start (history file) and retraining (feature store
dataset) go through the same code, and champion and challenger are scored on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import numpy as np

from cloud.errors import Invalid
from cloud.training.labels import FailureTimes, failure_times, label_rows
from shared.messages import PredictionType

if TYPE_CHECKING:
    from cloud.feature_store import TrainingDataset
    from firmware_sim.findings import Finding
    from firmware_sim.history import History

#: where a history's failure labels come from: the simulator's ground truth, or what technicians found
#: (firmware_sim.findings: dated by the visit, received late, some missed, some found degraded)
LabelSource = Literal["ground_truth", "technician"]
LABEL_SOURCES: tuple[str, ...] = ("ground_truth", "technician")


@dataclass(frozen=True)
class LabelledRows:
    """Rows of one prediction type in window_end order."""

    prediction_type: PredictionType
    feature_names: list[str]
    feature_set_version: str
    device_ids: np.ndarray  # str per row
    window_ends: np.ndarray  # datetime64[s] per row
    values: np.ndarray  # float32 (rows, features)
    #: component_failure: int64 index into labels.CLASSES; usage_pattern: float64 litres; anomaly: int64 CLASSES
    #: index where known (only to evaluate whether the score ranks failing heaters higher), else -1
    targets: np.ndarray
    #: failures for lead-time metrics, when known; ``device`` holds device ids (as ``device_ids`` does)
    failures: FailureTimes | None = None
    dataset_id: str | None = None

    def __len__(self) -> int:
        return int(self.targets.size)

    def take(self, index: np.ndarray) -> LabelledRows:
        """The rows a boolean mask or integer index selects (failures stay whole: they are events, not rows)."""
        return replace(
            self,
            device_ids=self.device_ids[index],
            window_ends=self.window_ends[index],
            values=self.values[index],
            targets=self.targets[index],
        )


def time_split(
    rows: LabelledRows, holdout_fraction: float = 0.25, gap: timedelta = timedelta(days=14)
) -> tuple[LabelledRows, LabelledRows, np.datetime64]:
    """(train, holdout, holdout_from): holdout = rows with window_end >= holdout_from; train = rows with
    window_end + gap <= holdout_from, so no training label looks into the held-out period."""
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must be between 0 and 1, got {holdout_fraction}")
    if not len(rows):
        raise Invalid(
            f"no labelled {rows.prediction_type.value} rows to split (every row's outcome is still unknown); "
            "simulate more days"
        )
    start, end = rows.window_ends.min(), rows.window_ends.max()
    holdout_from = start + ((end - start) * (1 - holdout_fraction)).astype("timedelta64[s]")
    gap_s = np.timedelta64(int(gap.total_seconds()), "s")
    train = rows.take(rows.window_ends + gap_s <= holdout_from)
    holdout = rows.take(rows.window_ends >= holdout_from)
    if not len(train) or not len(holdout):
        days = (end - start) / np.timedelta64(1, "D")
        raise Invalid(
            f"not enough labelled history to split by time: {len(train)} training and {len(holdout)} held-out "
            f"{rows.prediction_type.value} rows over {days:.1f} days with a {gap.days}-day gap; simulate more days "
            f"(at least ~{2 * gap.days + 14})"
        )
    return train, holdout, holdout_from


def _by_device_id(failures: FailureTimes, device_ids: np.ndarray) -> FailureTimes:
    return replace(failures, device=np.asarray(device_ids)[failures.device])


@dataclass(frozen=True)
class _Found:
    """A finding or a worn part's replacement as ``labels.failure_times`` reads a failure: the component seen
    at the visit."""

    device_id: str
    component: str
    failed_at: datetime


def history_findings(history: History) -> list[Finding]:
    """What technicians recorded of the history's failures and preventive replacements (firmware_sim.findings):
    the labels a utility has, and all the cold start stores in the feature store."""
    from firmware_sim.findings import technician_findings

    return technician_findings(history.failures, preventive=history.preventive)


def history_failures(history: History, labels: LabelSource) -> tuple[FailureTimes, np.datetime64]:
    """The failures a history's rows are labelled from, and the last time a row's horizon may end for its label
    to be known. Ground truth (the simulator's, to measure what label noise costs; never in the feature store):
    every failure, and every worn part replaced after an alert at its replacement, as a technician finds it
    degraded. Technician findings count from their visit and only once received by the history's end; a row
    waits for the slowest finding (``FindingRates.settling``) as well as its horizon, so at the end of the period
    a failure whose finding is still on its way is not read as health."""
    end = history.window_end.max()
    if labels == "ground_truth":
        replaced = [_Found(p.device_id, p.component, p.replaced_at) for p in history.preventive]
        return failure_times([*history.failures, *replaced], history.device_ids), end
    if labels != "technician":
        raise ValueError(f"unknown label source {labels!r}: one of {', '.join(LABEL_SOURCES)}")
    from firmware_sim.findings import FINDING_RATES

    limit = end.astype("datetime64[s]").astype(object)
    known = [
        _Found(f.device_id, f.component, f.observed_at)
        for f in history_findings(history)
        if f.received_at.replace(tzinfo=None) <= limit
    ]
    settling = np.timedelta64(int(FINDING_RATES.settling.total_seconds()), "s")
    return failure_times(known, history.device_ids), end - settling


def rows_from_history(
    history: History,
    prediction_type: PredictionType,
    horizon: timedelta = timedelta(days=14),
    labels: LabelSource = "ground_truth",
) -> LabelledRows:
    """The history's rows labelled for ``prediction_type`` (point in time, censored rows left out).

    component_failure: the first failure within the horizon; usage_pattern: litres drawn in the next 24 h
    (rows whose 24 h run past the simulation are left out); anomaly: every row, failure labels where known.
    ``labels``: failures from the simulator's ground truth or from technicians' findings (``history_failures``).
    """
    failures, observed_until = history_failures(history, labels)
    classes = label_rows(history.row_device, history.window_end, failures, horizon, observed_until)
    if prediction_type == PredictionType.USAGE_PATTERN:
        targets = history.usage_next_24h_litres.astype(np.float64)
        keep = np.isfinite(targets)
    else:
        targets = classes
        keep = classes >= 0 if prediction_type == PredictionType.COMPONENT_FAILURE else np.ones(classes.size, bool)
    index = np.flatnonzero(keep)
    index = index[np.argsort(history.window_end[index], kind="stable")]
    return LabelledRows(
        prediction_type=prediction_type,
        feature_names=list(history.feature_names),
        feature_set_version=history.feature_set_version,
        device_ids=np.asarray(history.device_ids)[history.row_device[index]],
        window_ends=history.window_end[index].astype("datetime64[s]"),
        values=history.features[index],
        targets=targets[index],
        failures=_by_device_id(failures, history.device_ids),
    )


def rows_from_dataset(dataset: TrainingDataset) -> LabelledRows:
    """A recorded feature store dataset as rows (its id kept, for the model's lineage)."""
    query = dataset.record.query
    return LabelledRows(
        prediction_type=dataset.prediction_type,
        feature_names=list(dataset.feature_names),
        feature_set_version=query["feature_set_version"],
        device_ids=dataset.device_ids,
        window_ends=dataset.window_ends,
        values=dataset.values,
        targets=dataset.labels,
        failures=dataset.failures,
        dataset_id=dataset.record.dataset_id or None,
    )
