"""How every command prints data: strict JSON for ``--json``, and tables with a header that say "none" when empty.

JSON goes through :func:`echo_json` so no command prints ``NaN`` or ``Infinity`` (not JSON: ``jq`` and
browsers refuse them): a non-finite number is printed as ``null``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def plain(value: Any) -> Any:
    """``value`` as JSON-ready lists, dicts, strings and numbers, with NaN and ±infinity as None."""
    if isinstance(value, BaseModel):
        return plain(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return plain(value.item())
    return str(value)


def to_json(value: Any, indent: int | None = 2) -> str:
    """Strict JSON text of ``value`` (see :func:`plain`)."""
    return json.dumps(plain(value), indent=indent, allow_nan=False, ensure_ascii=False)


def echo_json(value: Any, indent: int | None = 2) -> None:
    click.echo(to_json(value, indent))


def echo_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "none", separator: str | None = None
) -> None:
    """Columns under a header, aligned (or joined by ``separator``, e.g. a tab for wide rows a program reads);
    ``empty`` (default "none") alone when there are no rows."""
    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    if not cells:
        click.echo(empty)
        return
    if separator is not None:
        for row in [list(headers), *cells]:
            click.echo(separator.join(row))
        return
    widths = [max(len(header), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]
    for row in [list(headers), *cells]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
