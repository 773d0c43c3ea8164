"""Director documents that reached a gateway although the cloud never issued them to it: kept, counted, alerted.

Gateways name the document each event is about by its digest (``shared.director.document_digest``). An event naming
a digest the cloud issued to that gateway is about one of its deployments (``cloud.deployments``); any other is not:
a forged document (never issued: a changed signature or field, a document from a leaked key) or a foreign one
(issued to another gateway, replayed here). Whoever can publish on a gateway's ``down/desired`` can send those, so
they must never move a deployment or a rollout; they are evidence of an attack on that gateway instead.

Migration 21's trigger writes the row in the transaction that stores the event, whichever code stores it: one row
per gateway and document, with how often and when it was seen and the rule that caught it the last time. The
ingest worker raises each new row's alert once (``raise_alerts``): a WARNING log line starting with a stable
``forged director document seen on <gateway>`` (or ``foreign ...``), until an alert inbox exists, and has the
director publisher send that gateway's own document again, retained, in place of the one seen. The API
(``/api/security-events``) and the CLI (``iotsphere security``) list them and count them per gateway.

Its rows are the ``fleet`` owner's (``cloud.data.fleet``).
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from enum import StrEnum

import sqlite_utils
from pydantic import BaseModel
from sqlalchemy import RowMapping
from sqlalchemy.exc import DBAPIError

from cloud.data import fleet as stored
from cloud.data.connections import connection_of, write_transaction
from cloud.storage import from_iso, iso

log = logging.getLogger(__name__)

#: most rows one listing returns
MAX_LIMIT = 1000


class Finding(StrEnum):
    #: the cloud never issued a document with this digest
    FORGED = "forged"
    #: the cloud issued it, to another gateway
    FOREIGN = "foreign"


class SecurityEvent(BaseModel):
    """One document a gateway reported that the cloud never issued to it."""

    gateway_id: str
    document_digest: str
    finding: Finding
    #: for a foreign document, the gateway it was issued to
    issued_to: str | None
    #: what the gateway did with it, the last time it was seen: ``reject`` unless a director key leaked
    kind: str
    #: the rule that caught it (for a reject)
    rule: str | None
    detail: str | None
    #: the sequence the document claims (as the gateway reported it; anyone can write any)
    director_sequence: int | None
    #: the gateway's times of its first and latest event about it
    first_seen_at: datetime
    last_seen_at: datetime
    #: how many events named it
    sightings: int
    #: when the alert was raised (None: not yet)
    alerted_at: datetime | None

    def describe(self) -> str:
        """The alert's stable text: what was seen on which gateway, and what caught it."""
        if self.finding is Finding.FORGED:
            what = f"forged director document seen on {self.gateway_id}"
        else:
            what = f"foreign director document seen on {self.gateway_id} (issued to {self.issued_to})"
        rule = f" [{self.rule}]" if self.rule else ""
        sequence = f" claiming sequence {self.director_sequence}" if self.director_sequence is not None else ""
        return f"{what}: {self.kind}{rule} of document {self.document_digest[:16]}{sequence}, seen {self.sightings}x"


class GatewaySecurityCount(BaseModel):
    gateway_id: str
    #: distinct documents the cloud never issued to this gateway, and the events that named them
    documents: int
    sightings: int
    last_seen_at: datetime


def _event(row: RowMapping) -> SecurityEvent:
    return SecurityEvent(
        gateway_id=row["gateway_id"],
        document_digest=row["document_digest"],
        finding=Finding.FOREIGN if row["issued_to"] else Finding.FORGED,
        issued_to=row["issued_to"],
        kind=row["kind"],
        rule=row["rule"],
        detail=row["detail"],
        director_sequence=row["director_sequence"],
        first_seen_at=from_iso(row["first_seen_at"]),
        last_seen_at=from_iso(row["last_seen_at"]),
        sightings=row["sightings"],
        alerted_at=from_iso(row["alerted_at"]) if row["alerted_at"] else None,
    )


def list_events(
    db: sqlite_utils.Database, gateway_id: str | None = None, since: datetime | None = None, limit: int = 100
) -> list[SecurityEvent]:
    """Newest sighting first: every document seen (again) since ``since``, of one gateway or all."""
    since_at = iso(since) if since else None
    rows = stored.security_events_seen(connection_of(db), gateway_id, since_at, min(limit, MAX_LIMIT))
    return [_event(row) for row in rows]


def counts(db: sqlite_utils.Database, gateway_id: str | None = None) -> list[GatewaySecurityCount]:
    """Per gateway that saw any: how many documents it was sent that the cloud never issued to it."""
    return [
        GatewaySecurityCount(
            gateway_id=row["gateway_id"],
            documents=row["documents"],
            sightings=row["sightings"],
            last_seen_at=from_iso(row["last_seen_at"]),
        )
        for row in stored.security_event_counts(connection_of(db), gateway_id)
    ]


def raise_alerts(db: sqlite_utils.Database, now: datetime | None = None) -> list[SecurityEvent]:
    """Log each document not yet alerted at WARNING, once, and mark it; return them.

    One ``UPDATE ... RETURNING`` claims the rows, so two ingest workers never raise the same alert twice. In the same
    transaction those gateways' own documents are queued to be published again: the document that was seen came
    retained on their ``down/desired`` and took the cloud's place there. A database that cannot be written now
    leaves the alerts pending for the next call (ingest must go on regardless).
    """
    try:
        with write_transaction(db) as connection:
            rows = stored.claim_unalerted_security_events(connection, iso(now or datetime.now(UTC)))
            if rows:
                from cloud.releases import director  # TUF's code loads only when there is a document to resend

                director.resend(db, {row["gateway_id"] for row in rows})
    except (sqlite3.Error, DBAPIError) as exc:
        log.error("security alerts stay pending: %s", exc)
        return []
    raised = sorted((_event(row) for row in rows), key=lambda e: e.first_seen_at)
    for event in raised:
        log.warning("%s", event.describe())
    return raised
