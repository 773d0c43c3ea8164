"""A real cloud database (SQLite file) and a component_failure fleet whose labels are known by construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pytest
import sqlite_utils

from tests.api.conftest import base_url, config, db, http, tokens  # noqa: F401  (fixtures)
from tests.monitoring import fleet
from tests.monitoring.fleet import T0

#: every day-0 prediction's horizon has passed by then, no day-1 prediction's has
AS_OF = T0 + timedelta(days=15)
THRESHOLDS = {"1": {"heating_element": 0.3}, "2": {}}


@dataclass
class Expected:
    """What each prediction should be labelled with, per (version, device type, arm, day) cell."""

    #: cell → component → list of (probability, label, threshold)
    rows: dict[tuple, dict[str, list[tuple[float, int, float]]]] = field(default_factory=dict)
    latency: dict[tuple, list[float]] = field(default_factory=dict)

    def add(self, cell: tuple, component: str, probability: float, label: int | None, threshold: float) -> None:
        if label is not None:
            self.rows.setdefault(cell, {}).setdefault(component, []).append((probability, label, threshold))


@dataclass
class Fleet:
    db: sqlite_utils.Database
    expected: Expected
    prediction_ids: list[str]


def build_failure_fleet(db: sqlite_utils.Database, per_cell: int = 40, seed: int = 3) -> Fleet:  # noqa: F811
    """Each prediction on its own heater, so its outcomes are its own; probabilities rounded to 0.05 for ties.

    Per prediction one of: heating element failed (or replaced) 3 days later; thermostat failed 5 days later
    (positive for 'any' only); heating element 'ok' a day later; a failure 20 days later (outside the horizon);
    nothing. Day-0 horizons have passed at AS_OF; day-1 rows without a finding in the horizon are censored.
    """
    for version, thresholds in THRESHOLDS.items():
        fleet.version(db, "component_failure", version, "component_failure", {"thresholds": thresholds})
    rng = np.random.default_rng(seed)
    expected = Expected()
    ids = []
    for version in THRESHOLDS:
        for device_type in ("tank-50", "heat-pump-80"):
            for arm in ("champion", "challenger"):
                for day in (0, 1):
                    cell = (version, device_type, arm, day)
                    for i in range(per_cell):
                        made_at = T0 + timedelta(days=day, minutes=17 * i + 1)
                        p = round(float(rng.integers(0, 21)) * 0.05, 2)
                        latency = float(rng.gamma(2.0, 1.0))
                        pid = fleet.prediction(
                            db,
                            made_at,
                            {"none": round(1 - p, 2), "heating_element": p},
                            model_version=version,
                            device_type=device_type,
                            arm=arm,
                            latency_ms=latency,
                        )
                        ids.append(pid)
                        expected.latency.setdefault(cell, []).append(latency)
                        device = f"wh-{pid[:8]}"
                        fleet.outcome(
                            db, device, made_at - timedelta(days=1), component="heating_element", result="failed"
                        )
                        case = rng.choice(
                            ["he_failed", "thermostat", "ok", "late", "none"], p=[0.35, 0.1, 0.15, 0.1, 0.3]
                        )
                        passed = day == 0
                        he, any_ = (0 if passed else None), (0 if passed else None)
                        if case == "he_failed":
                            result = "failed" if i % 2 else "replaced"
                            fleet.outcome(
                                db, device, made_at + timedelta(days=3), component="heating_element", result=result
                            )
                            he, any_ = 1, 1
                        elif case == "thermostat":
                            fleet.outcome(
                                db, device, made_at + timedelta(days=5), component="thermostat", result="failed"
                            )
                            any_ = 1
                        elif case == "ok":
                            fleet.outcome(
                                db, device, made_at + timedelta(days=1), component="heating_element", result="ok"
                            )
                            he = 0
                        elif case == "late":
                            fleet.outcome(
                                db, device, made_at + timedelta(days=20), component="heating_element", result="failed"
                            )
                        threshold = THRESHOLDS[version].get("heating_element", 0.5)
                        expected.add(cell, "heating_element", p, he, threshold)
                        expected.add(cell, "any", 1 - round(1 - p, 2), any_, 0.5)
    return Fleet(db, expected, ids)


@pytest.fixture
def failure_fleet(db: sqlite_utils.Database) -> Fleet:  # noqa: F811
    return build_failure_fleet(db)
