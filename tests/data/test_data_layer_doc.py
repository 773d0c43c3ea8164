"""docs/data-layer.md names every owner with exactly the tables ``cloud.data.schema`` gives it."""

from __future__ import annotations

import re
from pathlib import Path

from cloud.data.schema import metadata, schema_migrations, tables_by_owner

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-layer.md"


def test_the_owner_table_of_the_doc_is_the_schema() -> None:
    rows = re.findall(r"^\| `(\w+)` \| ((?:`\w+`(?:, )?)+) \|", DOC.read_text(), flags=re.MULTILINE)
    documented = {owner: re.findall(r"`(\w+)`", tables) for owner, tables in rows}

    assert documented == tables_by_owner()
    owned = [table for tables in documented.values() for table in tables]
    assert sorted(owned) == sorted(set(metadata.tables) - {schema_migrations.name})  # each table once
