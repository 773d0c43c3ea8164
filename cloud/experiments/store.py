"""Experiment rows and their decision log (tables of migration 12 in ``cloud.storage``).

Status moves draft → running → stopped → concluded (or running → concluded). Each move is a conditional
UPDATE on the status it leaves, committed with its decision-log row, so two operators acting at once
cannot both start, stop or conclude the same experiment.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlite_utils
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from cloud.data import experiments as stored_experiments
from cloud.data.connections import connection_of, write_transaction
from cloud.errors import NotFound, Refused
from cloud.storage import iso


class Status(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"
    CONCLUDED = "concluded"


class UnknownExperiment(NotFound, LookupError):
    """No experiment with this id."""


class ExperimentConflict(Refused, ValueError):
    """The experiment is not in a state that allows the action, or another experiment is in the way."""


_JSON_FIELDS = ("guardrails_json", "gateway_ids_json")


def _decoded(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as callers use it: JSON columns parsed and named without their suffix."""
    decoded = {key: value for key, value in row.items() if key not in _JSON_FIELDS}
    decoded["guardrails"] = json.loads(row["guardrails_json"] or "{}")
    decoded["gateway_ids"] = json.loads(row["gateway_ids_json"]) if row["gateway_ids_json"] else None
    return decoded


class ExperimentStore:
    def __init__(self, db: sqlite_utils.Database, clock: Callable[[], datetime] | None = None):
        """``clock`` stamps starts, stops and decisions (default: now); a simulation passes its own time."""
        self.db = db
        self.clock = clock or (lambda: datetime.now(UTC))

    def create(self, row: dict[str, Any], actor: str, reason: str) -> dict[str, Any]:
        """Insert a draft and its ``create`` decision in one transaction."""
        now = iso(self.clock())
        stored = {
            **{k: v for k, v in row.items() if k not in ("guardrails", "gateway_ids")},
            "guardrails_json": json.dumps(row.get("guardrails") or {}, sort_keys=True),
            "gateway_ids_json": json.dumps(row["gateway_ids"]) if row.get("gateway_ids") is not None else None,
            "status": Status.DRAFT.value,
            "created_at": now,
            "created_by": actor,
        }
        with write_transaction(self.db) as connection:
            stored_experiments.add_experiment(connection, stored)
            self._log(connection, stored["experiment_id"], now, actor, "create", None, reason, {})
        return self.get(stored["experiment_id"])

    def get(self, experiment_id: str) -> dict[str, Any]:
        row = stored_experiments.find_experiment(connection_of(self.db), experiment_id)
        if row is None:
            raise UnknownExperiment(f"no experiment {experiment_id!r}")
        return _decoded(row)

    def list(self, status: Status | None = None, model_name: str | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        rows = stored_experiments.every_experiment(
            connection_of(self.db), status.value if status is not None else None, model_name
        )
        return [_decoded(row) for row in rows]

    def transition(
        self,
        experiment_id: str,
        leaving: tuple[Status, ...],
        fields: dict[str, Any],
        actor: str,
        action: str,
        decision: str | None,
        reason: str,
        details: dict[str, Any],
    ) -> dict[str, Any]:
        """Apply ``fields`` if the status is one of ``leaving``, logging the decision in the same transaction."""
        current = self.get(experiment_id)
        now = iso(self.clock())
        changes = {column: now if value is NOW else value for column, value in fields.items()}
        statuses = [Status(status).value for status in leaving]
        try:
            with write_transaction(self.db) as connection:
                if not stored_experiments.update_experiment_if(connection, experiment_id, statuses, changes):
                    raise ExperimentConflict(
                        f"experiment {experiment_id} is {self.get(experiment_id)['status']}: "
                        f"{action} needs it {' or '.join(leaving)}"
                    )
                self._log(connection, experiment_id, now, actor, action, decision, reason, details)
        except IntegrityError as exc:  # the one-running-per-model index
            raise ExperimentConflict(
                f"another experiment on {current['model_name']} is already running: stop or conclude it first"
            ) from exc
        return self.get(experiment_id)

    def record_decision(
        self, experiment_id: str, actor: str, action: str, decision: str | None, reason: str, details: dict[str, Any]
    ) -> None:
        """Log a decision that changes no status (a refused conclusion, a guardrail seen)."""
        with write_transaction(self.db) as connection:
            self._log(connection, experiment_id, iso(self.clock()), actor, action, decision, reason, details)

    def decisions(self, experiment_id: str) -> list[dict[str, Any]]:
        """The decision log, oldest first."""
        rows = stored_experiments.decisions(connection_of(self.db), experiment_id)
        return [{**row, "details": json.loads(row["details_json"] or "{}")} for row in rows]

    @staticmethod
    def _log(
        connection: Connection,
        experiment_id: str,
        at: str,
        actor: str,
        action: str,
        decision: str | None,
        reason: str,
        details: dict[str, Any],
    ) -> None:
        stored_experiments.add_decision(
            connection,
            {
                "experiment_id": experiment_id,
                "at": at,
                "actor": actor,
                "action": action,
                "decision": decision,
                "reason": reason,
                "details_json": json.dumps(details, sort_keys=True, default=str),
            },
        )


class _Now:
    """Marks a field that ``transition`` fills with the moment of the change."""


NOW = _Now()
