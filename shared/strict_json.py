"""JSON decoding for input from outside: RFC 8259 numbers only, and no nesting deep enough to exhaust the stack.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``-Infinity`` and turns ``1e400`` into infinity, none of which
is JSON or has a place in a store; and it recurses once per nesting level, so a document nested 100,000 deep raises
``RecursionError``, which is no ``ValueError`` and escapes handlers written for bad input. ``loads`` raises
``ValueError`` for all of them. (Pydantic models refuse non-finite floats through ``allow_inf_nan=False``.)
"""

from __future__ import annotations

import json
import math
from typing import Any


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def loads(data: bytes | str) -> Any:
    """``json.loads`` that raises ``ValueError`` for non-finite numbers and for nesting too deep to parse."""
    try:
        return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
