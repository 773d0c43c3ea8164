"""The alert inbox: a pass over every source raises what is new and resolves what cleared; people acknowledge and
resolve, each recorded with who and when and audited."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from cloud.alerts.sources import SOURCES, Source, labels_json
from cloud.audit import AuditLog
from cloud.config import environment
from cloud.data import alerts as stored
from cloud.data.alerts import ACKNOWLEDGED, OPEN, RESOLVED
from cloud.data.connections import connection_of, write_transaction
from cloud.data.times import iso
from cloud.errors import Invalid, NotFound, Refused

log = logging.getLogger(__name__)

STATES = (OPEN, ACKNOWLEDGED, RESOLVED)
#: who resolves an alert whose condition ended by itself
SYSTEM = "system: the condition cleared"
MAX_PAGE = 200


class UnknownAlert(NotFound, LookupError):
    """No alert with this id."""


@dataclass(frozen=True)
class Alert:
    id: int
    kind: str
    severity: str
    subject: str
    summary: str
    labels: dict[str, str]
    started_at: str
    state: str
    acknowledged_by: str | None
    acknowledged_at: str | None
    resolved_by: str | None
    resolved_at: str | None
    fingerprint: str

    @classmethod
    def of(cls, row: Any) -> Alert:
        fields = {name: row[name] for name in cls.__dataclass_fields__ if name != "labels"}
        return cls(**fields, labels=json.loads(row["labels_json"]))


@dataclass(frozen=True)
class ScanResult:
    raised: list[int]
    cleared: list[int]
    #: sources that failed this pass (logged; the others still ran)
    failed: list[str]


class AlertInbox:
    def __init__(self, db: sqlite_utils.Database, sources: tuple[Source, ...] = SOURCES):
        self.db = db
        self.sources = sources

    def scan(self, now: datetime | None = None) -> ScanResult:
        """One pass over every source: new conditions become open alerts, ended states resolve theirs."""
        now = now or datetime.now(UTC)
        settings = environment()
        raised: list[int] = []
        cleared: list[int] = []
        failed: list[str] = []
        for source in self.sources:
            try:
                findings = source.find(self.db, now, settings)
            except Exception:  # one source broken (e.g. a table mid-migration) must not silence the others
                log.exception("alert source %s failed", source.kind)
                failed.append(source.kind)
                continue
            with write_transaction(self.db) as connection:
                known = stored.known_fingerprints(connection, [finding.fingerprint for finding in findings])
                for finding in findings:
                    if finding.fingerprint in known:
                        continue
                    row = {
                        "fingerprint": finding.fingerprint,
                        "kind": finding.kind,
                        "severity": finding.severity,
                        "subject": finding.subject,
                        "summary": finding.summary,
                        "labels_json": labels_json(finding),
                        "started_at": finding.started_at,
                    }
                    raised.append(stored.add(connection, row))
                    log.warning("alert: %s %s: %s", finding.kind, finding.subject, finding.summary)
                if source.clears:
                    current = {finding.fingerprint for finding in findings}
                    for row in stored.unresolved_of_kinds(connection, [source.kind]):
                        if row["fingerprint"] not in current:
                            stored.move(connection, row["id"], RESOLVED, SYSTEM, iso(now), (OPEN, ACKNOWLEDGED))
                            cleared.append(row["id"])
        return ScanResult(raised, cleared, failed)

    def get(self, alert_id: int) -> Alert:
        row = stored.find(connection_of(self.db), alert_id)
        if row is None:
            raise UnknownAlert(f"no alert {alert_id}")
        return Alert.of(row)

    def page(self, state: str | None = None, before_id: int | None = None, limit: int = 50) -> list[Alert]:
        """Newest first; page on with ``before_id`` set to the last id you got."""
        if state is not None and state not in STATES:
            raise Invalid(f"state must be one of {', '.join(STATES)}, not {state!r}")
        if not 1 <= limit <= MAX_PAGE:
            raise Invalid(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
        return [Alert.of(row) for row in stored.page(connection_of(self.db), state, before_id, limit)]

    def counts(self) -> dict[str, int]:
        """How many alerts are in each state (every state named, zero included)."""
        return {state: 0 for state in STATES} | stored.counts_by_state(connection_of(self.db))

    def acknowledge(self, alert_id: int, actor: str) -> Alert:
        """Someone is on it: the alert stays in the inbox, marked with who and when."""
        return self._move(alert_id, ACKNOWLEDGED, actor, (OPEN,))

    def resolve(self, alert_id: int, actor: str) -> Alert:
        """Done with: the alert leaves the open inbox (kept, with who and when)."""
        return self._move(alert_id, RESOLVED, actor, (OPEN, ACKNOWLEDGED))

    def _move(self, alert_id: int, to: str, actor: str, from_: tuple[str, ...]) -> Alert:
        current = self.get(alert_id)
        with write_transaction(self.db) as connection:
            if not stored.move(connection, alert_id, to, actor, iso(datetime.now(UTC)), from_):
                raise Refused(f"alert {alert_id} is {current.state}: it cannot become {to}")
            verb = "acknowledge" if to == ACKNOWLEDGED else "resolve"
            AuditLog(self.db).record(actor, f"alerts.{verb}", str(alert_id), {"kind": current.kind})
        return self.get(alert_id)
