"""One gateway's timeline, newest first: every source's owner query limited to a page, merged and cut to a page.

The sources are the director's documents issued to the gateway, the gateway's own events (download, activate,
probation, commit, reject with the rule, rollback, health...), its devices' outcomes and the security events of
documents it reported that were never issued to it. Each is read from its owner by a keyset over (time, key), so a
page costs ``len(SOURCES)`` index ranges of at most a page each, however long the gateway's history. Items are
ordered by (time, source, key), newest first; the cursor is the last item shown, and a source that sorts before the
cursor's own at the same instant keeps its rows at that instant (``before_cursor`` with no key). Times are compared
as stored (each source's own ISO text), the same way in SQL and here, so no item is skipped or shown twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from cloud.data import director, fleet, predictions


@dataclass(frozen=True)
class Item:
    """One thing that happened at the gateway."""

    at: str
    source: str
    key: str
    #: the source's row as stored
    row: Mapping[str, Any]

    @property
    def cursor(self) -> str:
        return f"{self.at}|{self.source}|{self.key}"


@dataclass(frozen=True)
class Source:
    name: str
    time: str
    key: str
    read: Callable[[Connection, str, tuple[str, str | None] | None, int], list[Any]]


#: in their order at the same instant (newest-first order reverses it)
SOURCES = (
    Source("document", "issued_at", "document_digest", director.issued_before),
    Source("event", "sent_at", "msg_id", fleet.events_before),
    Source("outcome", "observed_at", "outcome_id", predictions.outcomes_before),
    Source("security", "first_seen_at", "document_digest", fleet.security_events_before),
)


def parse_cursor(text: str | None) -> tuple[str, str, str] | None:
    """``Item.cursor`` back into (time, source, key); ValueError if it is not one."""
    if not text:
        return None
    at, source, key = text.split("|", 2)
    if source not in {s.name for s in SOURCES}:
        raise ValueError(f"unknown timeline source {source!r}")
    return at, source, key


def _source_cursor(source: Source, cursor: tuple[str, str, str] | None) -> tuple[str, str | None] | None:
    if cursor is None:
        return None
    at, name, key = cursor
    if source.name == name:
        return at, key
    # newest first: a source after the cursor's at the same instant was shown already, one before it was not
    return (at, "") if source.name > name else (at, None)


def page(
    connection: Connection, gateway_id: str, cursor: tuple[str, str, str] | None, size: int
) -> tuple[list[Item], str | None]:
    """The ``size`` newest items before ``cursor`` and the cursor of the next page (None: this is the last)."""
    items = [
        Item(row[source.time] or "", source.name, row[source.key], row)
        for source in SOURCES
        for row in source.read(connection, gateway_id, _source_cursor(source, cursor), size + 1)
    ]
    items.sort(key=lambda item: (item.at, item.source, item.key), reverse=True)
    shown = items[:size]
    return shown, shown[-1].cursor if len(items) > size else None
