"""Bounds every value on the wire shares, so that no accepted value is one a store or a peer cannot hold.

Integers stop at 2**53 - 1: every JSON reader keeps them exact (JavaScript's ``Number.MAX_SAFE_INTEGER``) and
every store holds them (SQLite's INTEGER and PostgreSQL's BIGINT go to 2**63 - 1), with room to add to the
largest one without overflowing a store. Floats are finite (models set ``allow_inf_nan=False``); those a model
computed stay within float32, the type of every ONNX output. Times lie in [``EARLIEST``, ``LATEST``): their stored
text (``cloud.storage.iso``) is fixed-width only for four-digit years, and a time near year 1 or 9999 overflows
as soon as it is moved to UTC or a horizon is added to it. Names and lists are short enough that no row of a
store grows without bound.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field

MAX_SAFE_INT = 2**53 - 1
#: the largest finite float32 (``numpy.finfo(numpy.float32).max``)
FLOAT32_MAX = 3.4028234663852886e38
#: the span of times on the wire: the Unix epoch (where a gateway's unset clock starts) to well past any horizon
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

#: a non-negative integer a JSON reader and a database both keep exactly: counts, sequences, versions
SafeCount = Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]
#: a director document's sequence, from 1 (a gateway that reached the bound cannot be directed further: its
#: own fault, reported for it alone)
Sequence = Annotated[int, Field(ge=1, le=MAX_SAFE_INT)]
#: SHA-256 as 64 lower-case hex digits (a director document's digest, a target's hash)
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
#: a value a model computed: finite and within float32
ModelOutput = Annotated[float, Field(allow_inf_nan=False, ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
#: a time on the wire (the offset is checked where the type is used)
WireTime = Annotated[datetime, Field(ge=EARLIEST, lt=LATEST)]
#: a model, feature, output, arm or counter name
Name = Annotated[str, Field(min_length=1, max_length=64)]
#: a model version or a software version
Version = Annotated[str, Field(min_length=1, max_length=32)]
#: named counters (per arm, per channel, per kind of bad reading): a few dozen names at most
Counters = Annotated[dict[Name, SafeCount], Field(max_length=64)]
