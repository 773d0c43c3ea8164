"""Simulator throughput: heater-days per second for a 1,000-heater fleet.

- ``history``: ``generate_history`` as the cold start runs it (180 days, shards in one process per
  core): the whole simulation (households, climate, faults, tank physics, sensors) plus feature set
  v1 every 6 hours and the usage labels.
- ``simulation``: one process stepping the whole fleet's six-hour blocks, without features.
- ``physics``: the compiled tank kernel alone (its threads on every core), driven by one simulated
  day's controls.

numba compiles the kernel once per machine (cached); a warm-up run keeps that out of the figures.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from firmware_sim.fleet import BLOCK_HOURS, FleetSimulator
from firmware_sim.history import generate_history
from firmware_sim.physics import BlockControls

HEATERS = 1000
#: the cold-start history is 180 days; the simulation-only and physics-only figures need less
HISTORY_DAYS = 180
DAYS = 30
TARGET_HEATER_DAYS_PER_S = 5000
START = datetime(2025, 1, 1, tzinfo=UTC)


def _per_second(heater_days: float, seconds: float) -> int:
    return round(heater_days / seconds)


def _physics_rate(days: int) -> int:
    """The bare kernel, driven by the controls of one simulated day of a real fleet."""
    fleet = FleetSimulator(HEATERS, 1, START, device_prefix="bench")
    day: list[BlockControls] = []
    for _ in range(24 // BLOCK_HOURS):
        controls = fleet.prepare_block()[1]
        fleet.blocks_done += 1
        day.append(controls)
    began = time.perf_counter()
    for _ in range(days):
        for controls in day:
            fleet.physics.run_block(controls)
    return _per_second(HEATERS * days, time.perf_counter() - began)


def run() -> dict:
    generate_history(heaters=10, days=1, seed=0, start=START)  # warm-up: numba cache, imports
    load_before = os.getloadavg()[0]  # the machine is shared: other work slows every figure here

    began = time.perf_counter()
    history = generate_history(heaters=HEATERS, days=HISTORY_DAYS, seed=1, start=START)
    history_s = time.perf_counter() - began

    fleet = FleetSimulator(HEATERS, 1, START, device_prefix="bench")
    began = time.perf_counter()
    for _ in range(DAYS * 24 // BLOCK_HOURS):
        fleet.next_block()
    simulation_s = time.perf_counter() - began

    history_rate = _per_second(HEATERS * HISTORY_DAYS, history_s)
    return {
        "heaters": HEATERS,
        "history_days": HISTORY_DAYS,
        "workers": os.cpu_count(),
        "rows": int(len(history.features)),
        "failures": history.failure_counts(),
        "history_seconds": round(history_s, 2),
        "history_heater_days_per_s": history_rate,
        "simulation_heater_days_per_s": _per_second(HEATERS * DAYS, simulation_s),
        "physics_heater_days_per_s": _physics_rate(DAYS),
        "target_history_heater_days_per_s": TARGET_HEATER_DAYS_PER_S,
        "meets_target": history_rate >= TARGET_HEATER_DAYS_PER_S,
        "load_average_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
