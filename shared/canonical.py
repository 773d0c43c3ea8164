"""Canonical JSON: one byte string per document, so signatures survive re-serialisation.

We use the OLPC canonical form that TUF itself signs (securesystemslib), rather than inventing one.
Floats are not allowed in canonical JSON; signed documents carry numbers as integers or strings.
"""

from __future__ import annotations

from typing import Any

from securesystemslib.formats import encode_canonical


def canonical_bytes(document: Any) -> bytes:
    """Canonical UTF-8 bytes of a JSON-compatible document (no floats)."""
    encoded = encode_canonical(document)
    assert isinstance(encoded, str)
    return encoded.encode("utf-8")
