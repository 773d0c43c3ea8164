"""Bounds shared by request parameters, so no number or time a client sends overflows a store or a time span.

Integers stop at ``shared.limits.MAX_SAFE_INT`` (what SQLite stores and every JSON reader keeps exact), and row
ids and counts kept in INTEGER columns at ``MAX_STORED_INT`` (4 bytes on PostgreSQL); durations at
``MAX_DURATION_S`` (``timedelta`` overflows near 10**14 s, and a deadline longer than a year means a mistake); times
are ISO 8601 text, as the OpenAPI document says (pydantic would otherwise read ``0.5`` or ``1700000000`` as seconds
since 1970), within the wire's span (``shared.limits.EARLIEST`` to ``LATEST``); and JSON numbers and booleans are
taken only as such, as pydantic's lax mode would read ``true`` as 1 and ``"0.5"`` as a number.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

from shared.limits import EARLIEST, LATEST, MAX_SAFE_INT
from shared.messages import UtcDatetime

#: the largest an INTEGER column holds on PostgreSQL (row ids are SERIAL): a larger id or count is refused (422) as
#: SQLite's 64-bit columns would take it, rather than failing the query there (500)
MAX_STORED_INT = 2**31 - 1

__all__ = [
    "MAX_DURATION_S",
    "MAX_SAFE_INT",
    "MAX_STORED_INT",
    "AwareIsoDatetime",
    "Flag",
    "Integer",
    "IsoDatetime",
    "Number",
    "UtcIsoDatetime",
]

#: the longest deadline or window a request may name, in seconds: a year
MAX_DURATION_S = 366 * 24 * 3600

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: years a time may name, as on the wire: any deadline, window or horizon the API allows can be added to or taken
#: from one of them without leaving ``datetime``'s range (years 1 to 9999), which raises OverflowError
_YEARS = range(EARLIEST.year, LATEST.year)


def _iso_text(value: Any) -> Any:
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise ValueError("a time is ISO 8601 text, such as 2026-02-01T00:00:00Z")


def _json_integer(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("an integer is a JSON number, such as 3")
    return value  # pydantic refuses 3.5 and takes 3.0 as 3


def _in_range(value: datetime) -> datetime:
    if value.year not in _YEARS:
        raise ValueError(f"a time from the year {_YEARS.start} to before {_YEARS.stop}")
    return value


#: a time as ISO 8601 text, with or without an offset
IsoDatetime = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_in_range)]
#: a time as ISO 8601 text with an offset
AwareIsoDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_in_range)]
#: a time as ISO 8601 text with an offset, converted to UTC
UtcIsoDatetime = Annotated[UtcDatetime, BeforeValidator(_iso_text), AfterValidator(_in_range)]

#: a finite JSON number (an integer is one too)
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
#: a JSON integer, 3.0 included as JSON Schema has it (give it bounds where it is used: bounds here would override)
Integer = Annotated[int, BeforeValidator(_json_integer)]
#: a JSON true or false
Flag = Annotated[bool, Field(strict=True)]
