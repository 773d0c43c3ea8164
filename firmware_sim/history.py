"""The labelled history that trains the first models (cold start).

A fleet is simulated from ``start`` for ``days`` (in shards, in parallel processes); every
``window_every_hours`` (a multiple of the 6-hour block) from the end of the first day, each heater
gets one row of feature-set-v1 features over the 24 hours before. The features are
``shared.features`` applied to the simulated telemetry: each 6-hour block is reduced once with
``block_stats`` and a window's four blocks combined with ``features_from_block_stats``, which is
exactly what ``compute_features`` does on the edge. Ground truth comes alongside: every failure
event, every preventive replacement an alert led to (with an ``AlertDispatch``), every dated
maintenance (field calibration: tank flushes), and for each row the hot water drawn in the next 24 h
and the heater's age (a covariate a utility's asset register holds; field calibration only). A
``WorldChange`` changes the world part-way through (colder inlet water, a new anode type on some
heaters).
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import multiprocessing.queues
import os
import queue
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numba
import numpy as np

from firmware_sim.calibration import DEFAULT_CALIBRATION, Calibration
from firmware_sim.dispatch import AlertDispatch
from firmware_sim.faults import FailureEvent, MaintenanceEvent, PreventiveRepair
from firmware_sim.fleet import BLOCK_HOURS, SHARD_HEATERS, FleetSimulator, minute_floor
from firmware_sim.world_change import WorldChange
from shared.features import (
    BLOCKS_PER_WINDOW,
    FEATURE_NAMES,
    FEATURE_SET_VERSION,
    block_stats,
    features_from_block_stats,
)
from shared.messages import Component

HISTORY_FORMAT = 1
#: ``progress(simulated_days_done, days)``
Progress = Callable[[float, int], None]


@dataclass
class History:
    feature_names: list[str]
    feature_set_version: str
    device_ids: np.ndarray  # str
    device_types: np.ndarray  # str, as at the end (a world change's new anode adds its suffix)
    row_device: np.ndarray  # int: index into device_ids
    window_end: np.ndarray  # datetime64[s], UTC
    features: np.ndarray  # float32 (rows, n_features)
    usage_next_24h_litres: np.ndarray  # float32 (rows,), NaN where the 24 h run past the simulation
    failures: list[FailureEvent]
    #: the calibration the fleet ran on (firmware_sim.calibration): read its figures with it
    calibration: str = DEFAULT_CALIBRATION.name
    #: worn parts replaced after an alert, before they failed (``alert_share`` of the faults that warn)
    preventive: list[PreventiveRepair] = dataclass_field(default_factory=list)
    alert_share: float = 0.0
    #: what owners had done, dated (field calibration: tank flushes)
    maintenance: list[MaintenanceEvent] = dataclass_field(default_factory=list)
    #: float32 (rows,): the heater's (its tank's) age in years at the row; NaN where the calibration has no
    #: ages (accelerated) or the file predates them
    heater_age_years: np.ndarray | None = None

    def save(self, path: str | Path) -> None:
        """One ``.npz`` file (no pickles), written to ``path`` exactly."""
        with open(path, "wb") as out:
            np.savez(
                out,
                format=np.array(HISTORY_FORMAT),
                feature_names=np.array(self.feature_names),
                feature_set_version=np.array(self.feature_set_version),
                device_ids=self.device_ids,
                device_types=self.device_types,
                row_device=self.row_device,
                window_end=self.window_end,
                features=self.features,
                usage_next_24h_litres=self.usage_next_24h_litres,
                failure_device=np.array([f.device_id for f in self.failures], dtype=str),
                failure_component=np.array([f.component.value for f in self.failures], dtype=str),
                failure_at=_datetime64([f.failed_at for f in self.failures]),
                failure_repaired_at=_datetime64([f.repaired_at for f in self.failures]),
                failure_code=np.array([f.error_code for f in self.failures], np.int32),
                calibration=np.array(self.calibration),
                preventive_device=np.array([p.device_id for p in self.preventive], dtype=str),
                preventive_component=np.array([p.component.value for p in self.preventive], dtype=str),
                preventive_at=_datetime64([p.replaced_at for p in self.preventive]),
                preventive_would_fail_at=_datetime64([p.would_fail_at for p in self.preventive]),
                alert_share=np.array(self.alert_share),
                maintenance_device=np.array([m.device_id for m in self.maintenance], dtype=str),
                maintenance_kind=np.array([m.kind for m in self.maintenance], dtype=str),
                maintenance_at=_datetime64([m.at for m in self.maintenance]),
                heater_age_years=self.age_or_nan(),
            )

    def age_or_nan(self) -> np.ndarray:
        """``heater_age_years``, NaN where it is not known."""
        if self.heater_age_years is not None:
            return self.heater_age_years
        return np.full(len(self.features), np.nan, np.float32)

    def failure_counts(self) -> dict[str, int]:
        counts = collections.Counter(f.component.value for f in self.failures)
        return {c.value: counts.get(c.value, 0) for c in Component}


def _datetime64(moments: list[datetime]) -> np.ndarray:
    return np.array([m.astimezone(UTC).replace(tzinfo=None) for m in moments], dtype="datetime64[s]")


def _datetime(value: np.datetime64) -> datetime:
    return value.astype("datetime64[s]").astype(datetime).replace(tzinfo=UTC)


def load_history(path: str | Path) -> History:
    with np.load(path, allow_pickle=False) as data:
        if int(data["format"]) != HISTORY_FORMAT:
            raise ValueError(f"{path}: history format {int(data['format'])}, expected {HISTORY_FORMAT}")
        failures = [
            FailureEvent(str(device), Component(str(component)), _datetime(at), _datetime(repaired), int(code))
            for device, component, at, repaired, code in zip(
                data["failure_device"],
                data["failure_component"],
                data["failure_at"],
                data["failure_repaired_at"],
                data["failure_code"],
                strict=True,
            )
        ]
        preventive = [
            PreventiveRepair(str(device), Component(str(component)), _datetime(at), _datetime(would_fail))
            for device, component, at, would_fail in zip(
                data.get("preventive_device", ()),
                data.get("preventive_component", ()),
                data.get("preventive_at", ()),
                data.get("preventive_would_fail_at", ()),
                strict=True,
            )
        ]
        maintenance = [
            MaintenanceEvent(str(device), str(kind), _datetime(at))
            for device, kind, at in zip(
                data.get("maintenance_device", ()),
                data.get("maintenance_kind", ()),
                data.get("maintenance_at", ()),
                strict=True,
            )
        ]
        return History(
            feature_names=[str(name) for name in data["feature_names"]],
            feature_set_version=str(data["feature_set_version"]),
            device_ids=data["device_ids"],
            device_types=data["device_types"],
            row_device=data["row_device"],
            window_end=data["window_end"],
            features=data["features"],
            usage_next_24h_litres=data["usage_next_24h_litres"],
            failures=failures,
            calibration=str(data["calibration"]) if "calibration" in data else DEFAULT_CALIBRATION.name,
            preventive=preventive,
            alert_share=float(data["alert_share"]) if "alert_share" in data else 0.0,
            maintenance=maintenance,
            heater_age_years=data.get("heater_age_years"),
        )


def default_start(days: int) -> datetime:
    """A history that ends at the start of today (UTC), so live telemetry carries on from it."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


@dataclass
class _Plan:
    """What every shard simulates: the same days, blocks and feature windows."""

    seed: int
    start: datetime
    days: int
    device_prefix: str
    window_blocks: list[int]  # index of the block each feature window ends with
    change: WorldChange | None
    calibration: Calibration
    dispatch: AlertDispatch | None = None

    @property
    def total_blocks(self) -> int:
        return self.days * 24 // BLOCK_HOURS


@dataclass
class _ShardResult:
    device_ids: list[str]
    device_types: list[str]
    features: np.ndarray  # (windows, heaters, n_features)
    drawn_hourly: np.ndarray  # (heaters, hours)
    failures: list[FailureEvent]
    preventive: list[PreventiveRepair]
    maintenance: list[MaintenanceEvent]
    ages: np.ndarray  # (windows, heaters) years, NaN without field hazards


def _simulate_shard(plan: _Plan, shard: int, first_index: int, heaters: int, report: Callable[[int], None]):
    fleet = FleetSimulator(
        heaters,
        plan.seed,
        plan.start,
        plan.device_prefix,
        shard=shard,
        first_index=first_index,
        change=plan.change,
        calibration=plan.calibration,
        dispatch=plan.dispatch,
    )
    features = np.empty((len(plan.window_blocks), heaters, len(FEATURE_NAMES)), np.float32)
    ages = np.full((len(plan.window_blocks), heaters), np.nan, np.float32)
    hazards, everyone = fleet.faults.field, np.arange(heaters)
    drawn_hourly = np.empty((heaters, plan.days * 24), np.float32)
    recent: collections.deque[np.ndarray] = collections.deque(maxlen=BLOCKS_PER_WINDOW)
    failures: list[FailureEvent] = []
    row = 0
    for b in range(plan.total_blocks):
        block = fleet.next_block()
        recent.append(block_stats(block.window))
        drawn_hourly[:, b * BLOCK_HOURS : (b + 1) * BLOCK_HOURS] = block.drawn_l_hourly
        failures += block.failures
        if row < len(plan.window_blocks) and plan.window_blocks[row] == b:
            features[row] = features_from_block_stats(np.stack(recent, axis=1))
            if hazards is not None:  # a new tank is a new heater
                ages[row] = hazards.age_years(Component.TANK_LEAK, everyone, fleet.simulated_hours)
            row += 1
        report(heaters)
    faults = fleet.faults
    events = failures, faults.preventive, faults.maintenance
    return _ShardResult(fleet.device_ids, fleet.device_types, features, drawn_hourly, *events, ages)


_worker_progress: multiprocessing.queues.Queue | None = None


def _init_worker(progress: multiprocessing.queues.Queue) -> None:
    """A worker process: one numba thread (the processes already fill the cores), progress to the parent."""
    global _worker_progress
    _worker_progress = progress
    numba.set_num_threads(1)


def _simulate_shard_in_worker(plan: _Plan, shard: int, first_index: int, heaters: int) -> _ShardResult:
    return _simulate_shard(plan, shard, first_index, heaters, _worker_progress.put)


def _run_shards(plan: _Plan, shards: list[tuple[int, int]], workers: int, report: Callable[[int], None]):
    """Results of every shard in order, from this process or from ``workers`` processes."""
    if workers <= 1 or len(shards) == 1:
        return [_simulate_shard(plan, k, first, size, report) for k, (first, size) in enumerate(shards)]
    context = multiprocessing.get_context("spawn")  # numba's threads do not survive a fork
    progress = context.Queue()
    with concurrent.futures.ProcessPoolExecutor(
        min(workers, len(shards)), mp_context=context, initializer=_init_worker, initargs=(progress,)
    ) as pool:
        futures = [
            pool.submit(_simulate_shard_in_worker, plan, k, first, size) for k, (first, size) in enumerate(shards)
        ]
        # every shard reports every block; stop listening early only if a shard failed
        for _ in range(len(shards) * plan.total_blocks):
            while True:
                try:
                    report(progress.get(timeout=0.2))
                    break
                except queue.Empty:
                    if any(f.done() and f.exception() is not None for f in futures):
                        return [f.result() for f in futures]  # raises the shard's error
        return [f.result() for f in futures]


def generate_history(
    heaters: int,
    days: int,
    seed: int,
    start: datetime | None = None,
    window_every_hours: int = 6,
    progress: Progress | None = None,
    workers: int | None = None,
    change: WorldChange | None = None,
    calibration: Calibration = DEFAULT_CALIBRATION,
    dispatch: AlertDispatch | None = None,
) -> History:
    """Simulate the fleet and return its labelled feature rows. ``workers`` processes (default: one per
    core) simulate its shards of ``SHARD_HEATERS``; the result does not depend on how many. ``change``
    changes the world from its ``at_days`` (before the history's end) on; ``calibration`` says how the
    fleet fails and how noisy it is (firmware_sim.calibration); ``dispatch``, which faults an alert catches
    and a technician replaces before they fail (firmware_sim.dispatch)."""
    if heaters < 1:
        raise ValueError("a history needs at least one heater")
    if days < 1:
        raise ValueError("a history needs at least one day (the first feature window is 24 h)")
    if window_every_hours < BLOCK_HOURS or window_every_hours % BLOCK_HOURS:
        raise ValueError(f"window_every_hours must be a multiple of {BLOCK_HOURS}, got {window_every_hours}")
    if change is not None and change.at_hour >= days * 24:
        raise ValueError(f"the change at day {change.at_days:g} comes after the history's {days} days")
    start = minute_floor(start if start is not None else default_start(days))
    blocks_per_row = window_every_hours // BLOCK_HOURS
    total_blocks = days * 24 // BLOCK_HOURS
    plan = _Plan(
        seed=seed,
        start=start,
        days=days,
        device_prefix=f"sim{seed}",
        window_blocks=[b for b in range(BLOCKS_PER_WINDOW - 1, total_blocks) if (b + 1) % blocks_per_row == 0],
        change=change,
        calibration=calibration,
        dispatch=dispatch,
    )
    shards = [(first, min(SHARD_HEATERS, heaters - first)) for first in range(0, heaters, SHARD_HEATERS)]
    done = [0]

    def report(heater_blocks: int) -> None:
        done[0] += heater_blocks
        if progress is not None:
            progress(done[0] * BLOCK_HOURS / 24 / heaters, days)

    results = _run_shards(plan, shards, workers if workers is not None else os.cpu_count() or 1, report)
    features = np.concatenate([r.features for r in results], axis=1)
    drawn_hourly = np.concatenate([r.drawn_hourly for r in results], axis=0)
    windows = len(plan.window_blocks)
    end_hours = np.array([(b + 1) * BLOCK_HOURS for b in plan.window_blocks])
    cumulative = np.concatenate([np.zeros((heaters, 1)), np.cumsum(drawn_hourly, axis=1, dtype=np.float64)], axis=1)
    known = end_hours + 24 <= days * 24
    usage = np.full((windows, heaters), np.nan, np.float32)
    usage[known] = (cumulative[:, end_hours[known] + 24] - cumulative[:, end_hours[known]]).T
    start64 = np.datetime64(start.replace(tzinfo=None), "s")
    return History(
        feature_names=list(FEATURE_NAMES),
        feature_set_version=FEATURE_SET_VERSION,
        device_ids=np.array([d for r in results for d in r.device_ids]),
        device_types=np.array([t for r in results for t in r.device_types]),
        row_device=np.tile(np.arange(heaters), windows),
        window_end=np.repeat(start64 + end_hours.astype("timedelta64[h]"), heaters),
        features=features.reshape(-1, len(FEATURE_NAMES)),
        usage_next_24h_litres=usage.reshape(-1),
        failures=sorted((f for r in results for f in r.failures), key=lambda f: (f.failed_at, f.device_id)),
        calibration=calibration.name,
        preventive=sorted((p for r in results for p in r.preventive), key=lambda p: (p.replaced_at, p.device_id)),
        alert_share=dispatch.share if dispatch is not None else 0.0,
        maintenance=sorted((m for r in results for m in r.maintenance), key=lambda m: (m.at, m.device_id)),
        heater_age_years=np.concatenate([r.ages for r in results], axis=1).reshape(-1),
    )
