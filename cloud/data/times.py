"""Times as the cloud stores them: fixed-width ISO-8601 UTC text (``iso()``), which sorts as time does."""

from __future__ import annotations

from datetime import UTC, date, datetime


def iso(value: datetime) -> str:
    """Fixed-width UTC text, e.g. ``2026-01-31T06:00:00.000000Z``: lexical order is time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def utc_time(value: str | date | datetime, what: str = "time") -> datetime:
    """A caller's time as an aware UTC datetime: a date (or "2026-01-01") means its midnight UTC, an ISO-8601 time
    without an offset is taken as UTC. ValueError naming ``what`` for text that is neither."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{what} {value!r} is not an ISO-8601 date or time, e.g. 2026-01-31 or 2026-01-31T06:00:00Z"
            ) from None
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
