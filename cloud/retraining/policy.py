"""A model's retraining policy: which triggers are watched, the guards, and what happens to a winner.

Stored per model in ``retraining_policies`` as JSON; a model without a row is not retrained automatically
(schedules still run, with the guards of the default policy).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, Literal

import sqlite_utils

from cloud.config import environment
from cloud.data import retraining as stored_retraining
from cloud.data.connections import connection_of, write_transaction
from cloud.errors import Invalid
from cloud.storage import iso
from shared.limits import MAX_SAFE_INT

#: what happens to a challenger that passed the champion/challenger gate
AfterGate = Literal["experiment", "rollout", "operator"]
#: how an A/B experiment assigns the challenger: a share of heaters, or every heater beside the champion
ExperimentMode = Literal["split", "shadow"]


class InvalidPolicy(Invalid):
    """A policy value out of range, or an unknown setting."""


@dataclass(frozen=True)
class RetrainingPolicy:
    enabled: bool = False
    #: how often the worker looks at drift and feedback
    check_every_minutes: int = 60
    #: the recent window drift and feedback patterns are judged on
    window_days: int = 7
    #: feedback patterns compare the window with this many days before it
    baseline_days: int = 28
    feature_drift: bool = True
    performance_drift: bool = True
    feedback: bool = True
    #: observations each feedback window needs, and the rise in share that counts
    min_feedback: int = 30
    min_rise: float = 0.1
    alpha: float = 0.05
    #: guards: labels (outcomes) received since the production version's data, and hours between retrains
    min_new_labels: int = 50
    cooldown_hours: float = 24.0
    #: days of data a retraining run trains on, and how much better than production its challenger must score
    training_days: int = 90
    margin: float = field(default_factory=lambda: environment().promotion_margin)  # IOTSPHERE_PROMOTION_MARGIN
    after_gate: AfterGate = "experiment"
    #: split: heaters by a stable hash of their id; shadow: every heater runs the challenger beside the champion,
    #: whose predictions stay the ones used (each outcome then scores both arms: about twice the observations)
    experiment_mode: ExperimentMode = "split"
    #: a split experiment's share of heaters on the challenger
    experiment_percent: int = 50

    def __post_init__(self) -> None:
        self._check_types()
        positive = ("check_every_minutes", "window_days", "baseline_days", "min_feedback", "training_days")
        for name in positive:
            if getattr(self, name) < 1:
                raise InvalidPolicy(f"{name} must be at least 1, not {getattr(self, name)}")
        if not 0 < self.alpha < 0.5 or not 0 <= self.min_rise < 1 or not 0 <= self.margin < 1:
            raise InvalidPolicy("alpha must be in (0, 0.5), min_rise and margin in [0, 1)")
        if self.min_new_labels < 0 or self.cooldown_hours < 0:
            raise InvalidPolicy("min_new_labels and cooldown_hours cannot be negative")
        if self.after_gate not in ("experiment", "rollout", "operator"):
            raise InvalidPolicy(f"after_gate must be experiment, rollout or operator, not {self.after_gate!r}")
        if self.experiment_mode not in ("split", "shadow"):
            raise InvalidPolicy(f"experiment_mode must be split or shadow, not {self.experiment_mode!r}")
        if not 1 <= self.experiment_percent <= 99:
            raise InvalidPolicy("experiment_percent must be between 1 and 99")
        for name, most in _AT_MOST.items():
            if getattr(self, name) > most:
                raise InvalidPolicy(f"{name} must be at most {most}, not {getattr(self, name)}")

    def _check_types(self) -> None:
        """The CLI and direct calls reach here without the API's schema: a "7" or a 1e300 must not be stored."""
        for f in fields(self):
            value, kind = getattr(self, f.name), _KINDS.get(f.name, str)
            if kind is float:
                ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            elif kind is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
            else:
                ok = isinstance(value, kind)
            if not ok:
                raise InvalidPolicy(f"{f.name} must be {_KIND_NAMES[kind]}, not {value!r}")

    def updated(self, changes: dict[str, Any]) -> RetrainingPolicy:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise InvalidPolicy(f"unknown retraining settings {unknown}; known: {sorted(known)}")
        try:
            return replace(self, **changes)
        except TypeError as exc:
            raise InvalidPolicy(str(exc)) from exc


#: the type each setting must have (the rest are text): bool is no int here, and an int is a float
_KINDS: dict[str, type] = {
    **{f.name: bool for f in fields(RetrainingPolicy) if f.type == "bool"},
    **{f.name: int for f in fields(RetrainingPolicy) if f.type == "int"},
    **{f.name: float for f in fields(RetrainingPolicy) if f.type == "float"},
}
_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a finite number", str: "text"}
#: upper bounds: ten years of data or cooldown, a week between checks, counts a store holds exactly
_AT_MOST: dict[str, float] = {
    "check_every_minutes": 7 * 24 * 60,
    "window_days": 3650,
    "baseline_days": 3650,
    "training_days": 3650,
    "cooldown_hours": 3650 * 24,
    "min_feedback": MAX_SAFE_INT,
    "min_new_labels": MAX_SAFE_INT,
}


class PolicyStore:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def get(self, model_name: str) -> RetrainingPolicy:
        stored = stored_retraining.policy_json(connection_of(self.db), model_name)
        return RetrainingPolicy(**json.loads(stored)) if stored else RetrainingPolicy()

    def set(self, model_name: str, changes: dict[str, Any], updated_by: str) -> RetrainingPolicy:
        policy = self.get(model_name).updated(changes)
        with write_transaction(self.db) as connection:  # alone, or a savepoint of the caller's transaction
            stored = json.dumps(asdict(policy), sort_keys=True)
            stored_retraining.save_policy(connection, model_name, stored, updated_by, iso(datetime.now(UTC)))
        return policy

    def enabled_models(self) -> list[str]:
        return [
            name
            for name, stored in stored_retraining.every_policy(connection_of(self.db))
            if json.loads(stored).get("enabled")
        ]
