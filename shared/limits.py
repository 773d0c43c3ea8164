"""Bounds every number on the wire shares, so that no accepted value is one a store or a peer cannot hold.

Integers stop at 2**53 - 1: every JSON reader keeps them exact (JavaScript's ``Number.MAX_SAFE_INTEGER``) and
every store holds them (SQLite's INTEGER and PostgreSQL's BIGINT go to 2**63 - 1), with room to add to the
largest one without overflowing a store.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

MAX_SAFE_INT = 2**53 - 1

#: a non-negative integer a JSON reader and a database both keep exactly: counts, sequences, versions
SafeCount = Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]
#: a director document's sequence, from 1 (a gateway that reached the bound cannot be directed further: its
#: own fault, reported for it alone)
Sequence = Annotated[int, Field(ge=1, le=MAX_SAFE_INT)]
#: SHA-256 as 64 lower-case hex digits (a director document's digest, a target's hash)
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
