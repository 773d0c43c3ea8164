"""Which cloud modules outside the data layer run SQL, found by what SQL looks like in their source."""

from __future__ import annotations

import re
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
#: the cloud's code; the gateway's own SQLite files (edge_agent's outbox, quarantine, device index) are not the
#: cloud's data layer
PACKAGES = ("cloud", "iotsphere")
#: the data layer: the owners' tables and migrations, and the SQLite connection the services get until converted
DATA_LAYER = ("cloud/data/", "cloud/storage.py")

#: a call that runs SQL (sqlite3, sqlite-utils or SQLAlchemy), a sqlite-utils table by name, or SQL text
RUNS_SQL = re.compile(
    r"""\.execute(?:many|script)?\("""
    r"""|\.query\("""
    r"""|\bdb\["""
    r"""|\.(?:pks_and_)?rows_where\("""
    r"""|\["\w+"\]\.(?:insert|upsert|insert_all|upsert_all|delete_where|create)\("""
    r"""|["'](?:SELECT|INSERT|UPDATE|DELETE FROM|CREATE|WITH|PRAGMA|BEGIN)\b"""
)


def modules_running_sql(root: Path = PROJECT) -> dict[str, int]:
    """Each module outside the data layer whose source runs SQL, with how many places do."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module = path.relative_to(root).as_posix()
            if module.startswith(DATA_LAYER):
                continue
            if places := len(RUNS_SQL.findall(path.read_text())):
                found[module] = places
    return found
