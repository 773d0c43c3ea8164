"""No SQL outside the data layer (issue 13 §1), as a ratchet while the owners are converted.

``STILL_RUNNING_SQL`` lists the cloud modules that ran SQL when the data layer landed (docs/data-layer.md). A module
not on it that starts running SQL fails this test: new queries go into the owner's module under ``cloud/data``. A
module on it that stops (it was converted) fails it too, until it is struck from the list, so the list only shrinks;
it must reach empty.
"""

from __future__ import annotations

from pathlib import Path

from tests.data.sql_outside import modules_running_sql

STILL_RUNNING_SQL: frozenset[str] = frozenset()


def test_no_module_outside_the_data_layer_starts_running_sql() -> None:
    found = modules_running_sql()
    print(f"{len(found)} modules outside the data layer run SQL ({sum(found.values())} places):")
    print("\n".join(f"  {module}: {places}" for module, places in sorted(found.items(), key=lambda item: -item[1])))

    assert sorted(set(found) - STILL_RUNNING_SQL) == [], "run SQL through the owner's module in cloud/data instead"
    assert sorted(STILL_RUNNING_SQL - set(found)) == [], "converted (or gone): strike it from STILL_RUNNING_SQL"


def test_the_check_sees_each_way_of_running_sql(tmp_path: Path) -> None:
    (tmp_path / "cloud" / "data").mkdir(parents=True)
    (tmp_path / "iotsphere").mkdir()
    sources = {
        "cloud/raw.py": 'conn.execute("SELECT 1")\nconn.executemany(INSERT, rows)\n',
        "cloud/tables.py": 'db["models"].rows_where("status = ?", ["production"])\n',
        "cloud/text.py": 'QUERY = "SELECT model_name FROM models"\n',
        "cloud/clean.py": 'settings["events"].get("kind")\nvalues.insert(0, 1)\n',
        "cloud/data/models.py": 'connection.execute("SELECT 1")\n',
        "iotsphere/demo.py": 'db["predictions"].insert_all(rows)\n',
    }
    for module, source in sources.items():
        (tmp_path / module).write_text(source)

    assert modules_running_sql(tmp_path) == {
        "cloud/raw.py": 3,
        "cloud/tables.py": 2,
        "cloud/text.py": 1,
        "iotsphere/demo.py": 1,
    }
