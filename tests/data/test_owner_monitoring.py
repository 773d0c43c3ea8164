"""The ``monitoring`` owner's metric points, references and drift checks on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Connection

from cloud.data import monitoring


def _point(metric: str, at: str, value: float, **given: str) -> dict:
    series = {
        "model_name": "component_failure",
        "prediction_type": "component_failure",
        "model_version": "1",
        "device_type": "",
        "arm": "",
        "window": "",
    }
    return series | given | {"metric": metric, "value": value, "at": at, "source": "tracked", "recorded_at": at}


def _values(points: list) -> list[tuple[str, str, float]]:
    return [(point["metric"], point["at"], point["value"]) for point in points]


def test_a_point_tracked_again_replaces_its_value_and_reads_oldest_first(owner_connection: Connection) -> None:
    monitoring.put_metric_points(
        owner_connection,
        [_point("auc", "2026-01-02", 0.5), _point("auc", "2026-01-01", 0.25), _point("f1", "2026-01-01", 0.75)],
    )
    monitoring.put_metric_points(
        owner_connection, [_point("auc", "2026-01-02", 0.625) | {"source": "computed", "recorded_at": "2026-02-01"}]
    )
    monitoring.put_metric_points(owner_connection, [_point("auc", "2026-01-02", 0.125, model_version="2")])

    every = monitoring.find_metric_points(owner_connection, {})
    assert _values(every) == [
        ("auc", "2026-01-01", 0.25),
        ("f1", "2026-01-01", 0.75),
        ("auc", "2026-01-02", 0.625),
        ("auc", "2026-01-02", 0.125),
    ]
    assert set(every[0]) == {*_point("x", "", 0), "source"} - {"recorded_at"}
    assert _values(monitoring.find_metric_points(owner_connection, {"metric": "auc", "source": "computed"})) == [
        ("auc", "2026-01-02", 0.625)
    ]
    assert _values(monitoring.find_metric_points(owner_connection, {"model_version": "2"})) == [
        ("auc", "2026-01-02", 0.125)
    ]
    assert len(monitoring.find_metric_points(owner_connection, {}, start="2026-01-02")) == 2
    assert len(monitoring.find_metric_points(owner_connection, {}, end="2026-01-02")) == 2
    assert len(monitoring.find_metric_points(owner_connection, {}, limit=3)) == 3


def test_a_reference_is_replaced_and_the_newest_version_is_the_highest_number(owner_connection: Connection) -> None:
    assert monitoring.newest_referenced_version(owner_connection, "component_failure") is None
    for version in ("2", "10", "9"):
        monitoring.put_reference(owner_connection, "component_failure", version, f'{{"v": {version}}}', "2026-01-01")
    monitoring.put_reference(owner_connection, "component_failure", "2", '{"v": "again"}', "2026-01-02")
    monitoring.put_reference(owner_connection, "usage_pattern", "11", "{}", "2026-01-01")

    assert monitoring.reference_json(owner_connection, "component_failure", "2") == '{"v": "again"}'
    assert monitoring.reference_json(owner_connection, "component_failure", "3") is None
    assert monitoring.newest_referenced_version(owner_connection, "component_failure") == "10"


def test_drift_checks_are_numbered_and_read_newest_first(owner_connection: Connection) -> None:
    def check(model_name: str, status: str) -> dict:
        return {
            "model_name": model_name,
            "model_version": "1",
            "checked_at": "2026-01-01",
            "status": status,
            "result_json": "{}",
        }

    first = monitoring.add_drift_check(owner_connection, check("component_failure", "ok"))
    monitoring.add_drift_check(owner_connection, check("usage_pattern", "ok"))
    last = monitoring.add_drift_check(owner_connection, check("component_failure", "drift"))

    assert last > first
    assert [row["id"] for row in monitoring.drift_checks_of(owner_connection, "component_failure", 10)] == [
        last,
        first,
    ]
    [newest] = monitoring.drift_checks_of(owner_connection, "component_failure", 1)
    assert newest["status"] == "drift"
