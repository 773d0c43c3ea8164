"""The ``models`` owner's queries on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, event
from sqlalchemy.exc import IntegrityError

from cloud.data import models

NAME = "component_failure"


def _version(version: str, *, name: str = NAME, created_at: str = "2026-01-01T00:00:00.000000Z", **values) -> dict:
    return {
        "model_name": name,
        "model_version": version,
        "prediction_type": name,
        "status": "candidate",
        "created_at": created_at,
        "feature_set_version": "fs1",
        "device_types_json": "[]",
        "metrics_json": f'{{"version": "{version}"}}',
        "lineage_json": "{}",
        "model_sha256": "00" * 32,
        **values,
    }


def _evaluation(version: str) -> dict:
    return {"model_name": NAME, "model_version": version, "dataset_id": "d1", "score_name": "roc_auc", "score": 0.9}


def test_the_next_version_counts_only_all_digit_versions(owner_connection: Connection) -> None:
    assert models.highest_numeric_version(owner_connection, NAME) is None
    for version in ("1", "2", "10", "9a", "", "v11", "3.5", "2000000000"):
        models.add_version(owner_connection, _version(version))
    models.add_version(owner_connection, _version("77", name="usage_pattern"))

    # 2000000000 is past a 32-bit integer: PostgreSQL's index casts to BIGINT
    assert models.highest_numeric_version(owner_connection, NAME) == 2000000000
    assert models.highest_numeric_version(owner_connection, "usage_pattern") == 77


def test_the_next_version_is_read_from_the_numeric_version_index(owner_connection: Connection) -> None:
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement: str, parameters: object, _context, _many) -> None:
        statements.append((statement, parameters))

    event.listen(owner_connection, "before_cursor_execute", capture)
    try:
        models.highest_numeric_version(owner_connection, NAME)
    finally:
        event.remove(owner_connection, "before_cursor_execute", capture)
    (statement, parameters), *_ = statements
    if owner_connection.dialect.name == "postgresql":
        owner_connection.exec_driver_sql("SET LOCAL enable_seqscan = off")  # an empty table is scanned otherwise
        plan = owner_connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars().all()
    else:
        plan = [row[-1] for row in owner_connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
    assert "models_numeric_version" in "\n".join(plan)


def test_versions_are_found_listed_oldest_first_and_updated(owner_connection: Connection) -> None:
    models.add_version(owner_connection, _version("2", created_at="2026-01-02T00:00:00.000000Z"))
    models.add_version(owner_connection, _version("1", created_at="2026-01-03T00:00:00.000000Z"))
    models.add_version(owner_connection, _version("1", name="anomaly"))

    assert [(r["model_name"], r["model_version"]) for r in models.versions(owner_connection)] == [
        ("anomaly", "1"),
        (NAME, "2"),
        (NAME, "1"),
    ]
    assert [r["model_version"] for r in models.versions(owner_connection, NAME)] == ["2", "1"]
    assert models.find_version(owner_connection, NAME, "2")["created_at"] == "2026-01-02T00:00:00.000000Z"
    assert models.find_version(owner_connection, NAME, "3") is None
    assert models.has_model(owner_connection, NAME) and not models.has_model(owner_connection, "usage_pattern")
    assert models.metrics_json(owner_connection, NAME, "1") == '{"version": "1"}'
    assert models.metrics_json(owner_connection, NAME, "3") is None

    models.update_version(owner_connection, NAME, "2", {"evaluation_passed": 0, "evaluation_json": "{}"})
    assert models.find_version(owner_connection, NAME, "2")["evaluation_passed"] == 0
    assert models.find_version(owner_connection, NAME, "1")["evaluation_passed"] is None


def test_only_a_candidate_is_discarded_and_its_evaluations_with_it(owner_connection: Connection) -> None:
    models.add_version(owner_connection, _version("1", status="released"))
    models.add_version(owner_connection, _version("2"))
    for version in ("1", "2"):
        models.add_evaluation(owner_connection, _evaluation(version))

    assert models.discard_candidate(owner_connection, NAME, "1") is False
    assert models.discard_candidate(owner_connection, NAME, "2") is True
    assert models.discard_candidate(owner_connection, NAME, "2") is False
    assert [r["model_version"] for r in models.versions(owner_connection, NAME)] == ["1"]
    assert [r["model_version"] for r in models.evaluations(owner_connection, NAME)] == ["1"]


def test_a_device_types_production_version_wins_over_the_general_one(owner_connection: Connection) -> None:
    models.add_version(owner_connection, _version("1", status="released"))
    models.add_version(owner_connection, _version("2", status="released"))
    models.switch_production(owner_connection, NAME, "1", "", None, "released")
    models.switch_production(owner_connection, NAME, "2", "tank", None, "released")

    assert models.production_in(owner_connection, NAME, ["tank", ""])["model_version"] == "2"
    assert models.production_in(owner_connection, NAME, ["other", ""])["model_version"] == "1"
    assert models.production_in(owner_connection, NAME, ["other"]) is None
    assert [r["production_device_type"] for r in models.production_versions(owner_connection, NAME)] == ["", "tank"]


def test_switching_production_demotes_the_current_version(owner_connection: Connection) -> None:
    for version in ("1", "2"):
        models.add_version(owner_connection, _version(version, status="released"))
    models.switch_production(owner_connection, NAME, "1", "", None, "released")
    models.switch_production(owner_connection, NAME, "2", "", "1", "released")

    one, two = (models.find_version(owner_connection, NAME, v) for v in ("1", "2"))
    assert (one["status"], one["production_device_type"]) == ("released", None)
    assert (two["status"], two["production_device_type"]) == ("production", "")


def test_a_second_production_version_in_a_scope_is_refused(owner_connection: Connection) -> None:
    for version in ("1", "2"):
        models.add_version(owner_connection, _version(version, status="released"))
    models.switch_production(owner_connection, NAME, "1", "", None, "released")

    savepoint = owner_connection.begin_nested()  # PostgreSQL aborts the transaction at an error
    with pytest.raises(IntegrityError) as refused:
        models.switch_production(owner_connection, NAME, "2", "", None, "released")
    savepoint.rollback()
    # cloud.registry tells this refusal from other integrity errors by the word
    assert "unique" in str(refused.value.orig).lower()


def test_history_is_newest_first_and_names_the_version_replaced(owner_connection: Connection) -> None:
    def entry(device_type: str, from_version: str | None, to_version: str) -> dict:
        return {
            "at": "2026-01-01T00:00:00.000000Z",
            "actor": "op",
            "model_name": NAME,
            "device_type": device_type,
            "from_version": from_version,
            "to_version": to_version,
            "action": "promote",
            "reason": "r",
            "override": 0,
        }

    first = models.add_history(owner_connection, entry("", None, "1"))
    second = models.add_history(owner_connection, entry("", "1", "2"))
    third = models.add_history(owner_connection, entry("tank", "1", "3"))

    assert first < second < third
    assert [r["id"] for r in models.history(owner_connection, NAME)] == [third, second, first]
    assert [r["id"] for r in models.history(owner_connection, NAME, "")] == [second, first]
    assert models.version_before(owner_connection, NAME, "", "2") == "1"
    assert models.version_before(owner_connection, NAME, "", "1") is None
    assert models.version_before(owner_connection, NAME, "tank", "2") is None


def test_evaluations_are_newest_first_by_version(owner_connection: Connection) -> None:
    ids = [models.add_evaluation(owner_connection, _evaluation(v)) for v in ("1", "2", "1")]

    assert [r["id"] for r in models.evaluations(owner_connection, NAME)] == ids[::-1]
    assert [r["id"] for r in models.evaluations(owner_connection, NAME, "1")] == [ids[2], ids[0]]
    assert models.evaluations(owner_connection, NAME, "1")[0]["score"] == pytest.approx(0.9)
