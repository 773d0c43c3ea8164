"""Regular training: schedules as rows with their next fire time, so they survive a restart.

``daily``, ``weekly`` and ``monthly`` are croniter's ``@daily`` (00:00 UTC), ``@weekly`` (Sunday 00:00 UTC) and
``@monthly`` (the 1st, 00:00 UTC); anything else must be a five-field cron expression, read by croniter. Times are
UTC. A schedule that missed fire times while no worker ran fires once when one starts (not once per missed time),
and its training window is the ``window_days`` before the fire time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils
from croniter import croniter

from cloud.data import training as stored
from cloud.data.connections import connection_of, write_transaction
from cloud.errors import Invalid, NotFound
from cloud.storage import from_iso, iso

NAMED = {"daily": "@daily", "weekly": "@weekly", "monthly": "@monthly"}
DEFAULT_WINDOW_DAYS = 90


class InvalidSchedule(Invalid):
    """Not daily, weekly, monthly or a valid cron expression."""


class UnknownSchedule(NotFound, LookupError):
    """No schedule has this id."""


@dataclass(frozen=True)
class Schedule:
    schedule_id: int
    model_name: str
    schedule: str
    cron: str
    window_days: int
    options: dict[str, Any]
    created_by: str
    created_at: str
    next_run_at: str
    last_run_at: str | None
    last_run_id: str | None
    enabled: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Schedule:
        return cls(
            schedule_id=row["schedule_id"],
            model_name=row["model_name"],
            schedule=row["schedule"],
            cron=row["cron"],
            window_days=row["window_days"],
            options=json.loads(row["options_json"] or "{}"),
            created_by=row["created_by"],
            created_at=row["created_at"],
            next_run_at=row["next_run_at"],
            last_run_at=row["last_run_at"],
            last_run_id=row["last_run_id"],
            enabled=bool(row["enabled"]),
        )


def cron_expression(schedule: str) -> str:
    """The cron expression a schedule stands for; InvalidSchedule with the accepted forms otherwise."""
    text = " ".join(schedule.split())
    cron = NAMED.get(text.lower(), text)
    if (cron.startswith("@") or len(cron.split()) == 5) and croniter.is_valid(cron):
        return cron
    raise InvalidSchedule(
        f"invalid schedule {schedule!r}: use daily, weekly, monthly or a five-field cron expression "
        "such as '0 3 * * 1' (03:00 UTC every Monday)"
    )


def next_fire(cron: str, after: datetime) -> datetime:
    return croniter(cron, after.astimezone(UTC)).get_next(datetime)


class ScheduleStore:
    """The ``training_schedules`` table."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def add(
        self,
        model_name: str,
        schedule: str,
        created_by: str,
        window_days: int = DEFAULT_WINDOW_DAYS,
        options: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Schedule:
        if window_days < 1:
            raise InvalidSchedule(f"window_days must be at least 1, not {window_days}")
        cron = cron_expression(schedule)
        now = now or datetime.now(UTC)
        row = {
            "model_name": model_name,
            "schedule": schedule,
            "cron": cron,
            "window_days": window_days,
            "options_json": json.dumps(options or {}, sort_keys=True),
            "created_by": created_by,
            "created_at": iso(now),
            "next_run_at": iso(next_fire(cron, now)),
            "enabled": 1,
        }
        with write_transaction(self.db) as connection:  # joins a caller's open transaction
            schedule_id = stored.add_schedule(connection, row)
        return self.get(schedule_id)

    def get(self, schedule_id: int) -> Schedule:
        row = stored.find_schedule(connection_of(self.db), schedule_id)
        if row is None:
            raise UnknownSchedule(f"no training schedule {schedule_id}")
        return Schedule.from_row(row)

    def list(self, model_name: str | None = None) -> list[Schedule]:
        return [Schedule.from_row(row) for row in stored.schedules(connection_of(self.db), model_name)]

    def remove(self, schedule_id: int) -> Schedule:
        schedule = self.get(schedule_id)
        with write_transaction(self.db) as connection:
            stored.remove_schedule(connection, schedule_id)
        return schedule

    def due(self, now: datetime) -> list[Schedule]:
        return [Schedule.from_row(row) for row in stored.due_schedules(connection_of(self.db), iso(now))]

    def claim(self, schedule: Schedule, now: datetime) -> bool:
        """Move a due schedule to its next fire time; False if another worker did first (so it queues nothing)."""
        following = iso(next_fire(schedule.cron, now))
        with write_transaction(self.db) as connection:
            return stored.advance_schedule(connection, schedule.schedule_id, schedule.next_run_at, following)

    def record_run(self, schedule_id: int, run_id: str) -> None:
        with write_transaction(self.db) as connection:
            stored.record_schedule_run(connection, schedule_id, run_id)


def fire_time(schedule: Schedule) -> datetime:
    return from_iso(schedule.next_run_at)
