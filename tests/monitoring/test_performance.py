"""ModelPerformanceMonitor on a real SQLite file: every figure checked against scikit-learn / numpy on known data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlite_utils
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    brier_score_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    precision_recall_fscore_support,
    roc_auc_score,
)

from cloud.monitoring.performance import InvalidMetrics, ModelPerformanceMonitor, UnknownModelName
from cloud.storage import iso
from tests.monitoring import fleet
from tests.monitoring.conftest import AS_OF, Fleet
from tests.monitoring.fleet import T0

END = T0 + timedelta(days=2)


def _key(cell: dict) -> tuple:
    day = (datetime.fromisoformat(cell["window_start"]) - T0).days
    return cell["model_version"], cell["device_type"], cell["arm"], day


def test_classification_per_cell_agrees_with_scikit_learn(failure_fleet: Fleet):
    result = ModelPerformanceMonitor(failure_fleet.db).compute_metrics("component_failure", T0, END, "1d", as_of=AS_OF)

    cells = {_key(cell): cell for cell in result["cells"]}
    assert set(cells) == set(failure_fleet.expected.rows)
    assert len(cells) == 16  # 2 versions × 2 device types × 2 arms × 2 days
    for key, components in failure_fleet.expected.rows.items():
        assert set(cells[key]["classification"]) == set(components), key
        for component, rows in components.items():
            p, y, threshold = (np.array(column) for column in zip(*rows, strict=True))
            got = cells[key]["classification"][component]
            precision, recall, f1, _ = precision_recall_fscore_support(
                y, (p >= threshold).astype(int), average="binary", zero_division=0
            )
            assert (got["n"], got["positives"], got["alerts"]) == (y.size, y.sum(), (p >= threshold).sum())
            assert got["precision"] == pytest.approx(precision)
            assert got["recall"] == pytest.approx(recall)
            assert got["f1"] == pytest.approx(f1)
            assert got["brier"] == pytest.approx(brier_score_loss(y, p))
            if 0 < y.sum() < y.size:
                assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p)), (key, component)
            else:
                assert got["roc_auc"] is None
            observed, predicted = calibration_curve(y, p, n_bins=10)
            assert [b["observed"] for b in got["calibration"]] == pytest.approx(list(observed))
            assert [b["expected"] for b in got["calibration"]] == pytest.approx(list(predicted))
            assert sum(b["n"] for b in got["calibration"]) == y.size


def test_the_versions_threshold_decides_alerts(failure_fleet: Fleet):
    """Version 1 alerts on heating_element at 0.3 (its training threshold), version 2 at the default 0.5."""
    result = ModelPerformanceMonitor(failure_fleet.db).compute_metrics(
        "component_failure", T0, END, "all", ("model_version",), as_of=AS_OF
    )

    for cell in result["cells"]:
        rows = [
            row
            for key, components in failure_fleet.expected.rows.items()
            if key[0] == cell["model_version"]
            for row in components["heating_element"]
        ]
        p = np.array([row[0] for row in rows])
        threshold = 0.3 if cell["model_version"] == "1" else 0.5
        assert cell["classification"]["heating_element"]["alerts"] == int((p >= threshold).sum())


def test_later_outcomes_label_rows_whose_horizon_had_not_passed(failure_fleet: Fleet):
    """At AS_OF day-1 rows are censored unless something was found; 20 days on, every horizon has passed."""
    monitor = ModelPerformanceMonitor(failure_fleet.db)
    early = monitor.compute_metrics("component_failure", T0, END, "all", (), as_of=AS_OF)
    late = monitor.compute_metrics("component_failure", T0, END, "all", (), as_of=END + timedelta(days=20))

    [early_cell], [late_cell] = early["cells"], late["cells"]
    labelled = sum(len(c["heating_element"]) for c in failure_fleet.expected.rows.values())
    assert early_cell["classification"]["heating_element"]["n"] == labelled
    assert late_cell["classification"]["heating_element"]["n"] == late_cell["predictions"] == 640
    assert (late_cell["classification"]["any"]["positives"]) == early_cell["classification"]["any"]["positives"]


def test_windows_and_grouping(failure_fleet: Fleet):
    monitor = ModelPerformanceMonitor(failure_fleet.db)

    by_arm = monitor.compute_metrics("component_failure", T0, END, "all", ["arm"], as_of=AS_OF)
    assert [(c["arm"], c["model_version"], c["device_type"], c["predictions"]) for c in by_arm["cells"]] == [
        ("champion", None, None, 320),
        ("challenger", None, None, 320),
    ]
    assert {(c["window_start"], c["window_end"]) for c in by_arm["cells"]} == {(iso(T0), iso(END))}

    by_half_day = monitor.compute_metrics("component_failure", T0, END, "12h", ["device_type"], as_of=AS_OF)
    counts = {(c["device_type"], c["window_start"]): c["predictions"] for c in by_half_day["cells"]}
    # a cell's 40 predictions, 17 minutes apart from 00:01, all fall in the first half of their day
    assert counts == {
        (device_type, iso(T0 + timedelta(days=day))): 160
        for device_type in ("tank-50", "heat-pump-80")
        for day in (0, 1)
    }
    one_day = monitor.compute_metrics("component_failure", T0, T0 + timedelta(days=1), "1d", (), as_of=AS_OF)
    assert [c["predictions"] for c in one_day["cells"]] == [320]


def test_latency_percentiles_per_cell(failure_fleet: Fleet):
    result = ModelPerformanceMonitor(failure_fleet.db).compute_metrics("component_failure", T0, END, as_of=AS_OF)

    for cell in result["cells"]:
        values = failure_fleet.expected.latency[_key(cell)]
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        assert cell["latency_ms"] == pytest.approx(
            {"n": len(values), "mean": np.mean(values), "p50": p50, "p95": p95, "p99": p99}
        )


def test_usage_mae_and_mape_from_sensor_outcomes(db: sqlite_utils.Database):
    fleet.version(db, "usage_pattern", "1", "usage_pattern", {})
    rng = np.random.default_rng(5)
    expected: dict[str, tuple[list[float], list[float]]] = {"champion": ([], []), "challenger": ([], [])}
    for i in range(60):
        arm = "champion" if i % 3 else "challenger"
        predicted = float(rng.uniform(50, 300))
        actual = 0.0 if i % 10 == 0 else float(rng.uniform(50, 300))
        pid = fleet.prediction(
            db, T0 + timedelta(hours=i), {"litres_next_24h": predicted}, model_name="usage_pattern", arm=arm
        )
        fleet.outcome(
            db, f"wh-{pid[:8]}", T0 + timedelta(hours=i + 24), value=actual, source="sensor", prediction_id=pid
        )
        # neither a technician's value nor a sensor outcome without one is a measurement of this prediction
        fleet.outcome(db, f"wh-{pid[:8]}", T0 + timedelta(hours=i + 1), value=999.0, prediction_id=pid)
        expected[arm][0].append(predicted)
        expected[arm][1].append(actual)

    result = ModelPerformanceMonitor(db).compute_metrics("usage_pattern", T0, END + timedelta(days=1), "all", ["arm"])

    assert {cell["arm"] for cell in result["cells"]} == {"champion", "challenger"}
    for cell in result["cells"]:
        predicted, actual = (np.array(v) for v in expected[cell["arm"]])
        nonzero = actual != 0
        assert cell["regression"] == pytest.approx(
            {
                "n": actual.size,
                "mae": mean_absolute_error(actual, predicted),
                "mape": mean_absolute_percentage_error(actual[nonzero], predicted[nonzero]),
                "n_mape": int(nonzero.sum()),
            }
        )
        assert "classification" not in cell


def test_rating_statistics_leave_out_shadow_predictions(db: sqlite_utils.Database):
    ratings = {"champion": [5, 4, 4, 2, 1, 5], "challenger": [3, 2]}
    for arm, values in ratings.items():
        for value in values:
            pid = fleet.prediction(db, T0 + timedelta(hours=1), {"none": 0.9}, arm=arm)
            fleet.rating(db, pid, value)
    shared_id = fleet.prediction(db, T0 + timedelta(hours=2), {"none": 0.9}, arm="champion")
    fleet.prediction(db, T0 + timedelta(hours=2), {"none": 0.2}, arm="shadow", prediction_id=shared_id)
    fleet.rating(db, shared_id, 1)  # the user saw the champion's prediction, never the shadow's
    ratings["champion"].append(1)

    result = ModelPerformanceMonitor(db).compute_metrics("component_failure", T0, END, "all", ["arm"])

    cells = {cell["arm"]: cell for cell in result["cells"]}
    assert "ratings" not in cells["shadow"]
    for arm, values in ratings.items():
        got = cells[arm]["ratings"]
        assert got["n"] == len(values)
        assert got["mean"] == pytest.approx(np.mean(values))
        assert got["distribution"] == {str(r): values.count(r) for r in range(1, 6)}
        assert got["share_low"] == pytest.approx(np.mean(np.array(values) <= 2))


def test_gateway_events_and_dead_letters_are_counted(db: sqlite_utils.Database):
    fleet.prediction(db, T0, {"none": 0.9})
    for minutes, kind, version in [
        (5, "reject", "2"),
        (6, "reject", "2"),
        (7, "activate", "1"),
        (60 * 30, "rollback", "2"),
    ]:
        db["gateway_events"].insert(
            {
                "msg_id": f"ev-{minutes}",
                "gateway_id": "gw-1",
                "kind": kind,
                "model_name": "component_failure",
                "model_version": version,
                "sent_at": iso(T0 + timedelta(minutes=minutes)),
            }
        )
    db["dead_letters"].insert({"topic": "t", "payload": b"x", "reason": "invalid", "received_at": iso(T0)})

    result = ModelPerformanceMonitor(db).compute_metrics("component_failure", T0, END, "1d")

    assert result["dead_letters"] == 1
    assert [(e["model_version"], e["window_start"], e["events"]) for e in result["errors"]] == [
        ("1", iso(T0), {"activate": 1}),
        ("2", iso(T0), {"reject": 2}),
        ("2", iso(T0 + timedelta(days=1)), {"rollback": 1}),
    ]


def test_tracked_points_form_series_and_a_repeat_replaces_its_value(db: sqlite_utils.Database):
    monitor = ModelPerformanceMonitor(db)
    at = T0 + timedelta(hours=1)

    assert (
        monitor.track_prediction_metrics("component_failure", {"alert_rate": 0.1, "x": 2}, at, "3", arm="champion") == 2
    )
    monitor.track_prediction_metrics("component_failure", {"alert_rate": 0.2}, at, "3", arm="champion")
    monitor.track_prediction_metrics("component_failure", {"alert_rate": 0.3}, at + timedelta(hours=1), "3")

    series = monitor.metric_points(model_name="component_failure", metric="alert_rate")
    assert [(p["value"], p["arm"], p["at"]) for p in series] == [
        (0.2, "champion", iso(at)),
        (0.3, "", iso(at + timedelta(hours=1))),
    ]
    assert [p["value"] for p in monitor.metric_points(arm="champion", metric="alert_rate")] == [0.2]
    assert monitor.metric_points(start=at + timedelta(minutes=1))[0]["value"] == 0.3


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"good": 1.0, "bad": float("nan")}, "'bad' must be a finite number"),
        ({"flag": True}, "'flag' must be a finite number"),
        ({}, "no metrics given"),
        ({"": 1.0}, "metric names are 1–128 characters"),
    ],
)
def test_bad_points_are_refused_and_nothing_is_stored(db: sqlite_utils.Database, metrics: dict, message: str):
    monitor = ModelPerformanceMonitor(db)

    with pytest.raises(InvalidMetrics, match=message):
        monitor.track_prediction_metrics("component_failure", metrics, T0)
    assert monitor.metric_points() == []


def test_an_unknown_prediction_type_or_arm_is_refused(db: sqlite_utils.Database):
    monitor = ModelPerformanceMonitor(db)

    with pytest.raises(InvalidMetrics, match="'weather' is not a valid PredictionType"):
        monitor.track_prediction_metrics("weather", {"x": 1.0}, T0)
    with pytest.raises(InvalidMetrics, match="'blue' is not a valid Arm"):
        monitor.track_prediction_metrics("anomaly", {"x": 1.0}, T0, arm="blue")
    with pytest.raises(InvalidMetrics, match="time zone"):
        monitor.track_prediction_metrics("anomaly", {"x": 1.0}, datetime(2026, 3, 1))
    assert monitor.metric_points() == []


def test_computed_figures_are_stored_as_points(failure_fleet: Fleet):
    monitor = ModelPerformanceMonitor(failure_fleet.db)
    result = monitor.compute_metrics("component_failure", T0, END, "1d", ["model_version"], as_of=AS_OF, store=True)

    points = monitor.metric_points(metric="classification.heating_element.roc_auc", source="computed")
    assert {(p["model_version"], p["at"], p["window"]) for p in points} == {
        (version, iso(T0 + timedelta(days=day)), "1d") for version in ("1", "2") for day in (0, 1)
    }
    v1_day0 = next(c for c in result["cells"] if c["model_version"] == "1" and c["window_start"] == iso(T0))
    stored = monitor.metric_points(metric="latency_ms.p95", model_version="1", start=T0, end=T0 + timedelta(hours=1))
    assert [p["value"] for p in stored] == [pytest.approx(v1_day0["latency_ms"]["p95"])]
    # storing again replaces, never duplicates
    monitor.compute_metrics("component_failure", T0, END, "1d", ["model_version"], as_of=AS_OF, store=True)
    assert len(monitor.metric_points(metric="classification.heating_element.roc_auc")) == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": "5x"}, "window must look like"),
        ({"window": "0d"}, "window must look like"),
        ({"group_by": ["gateway"]}, "group_by takes"),
        ({"start": END, "end": T0}, "must come before end"),
        ({"start": datetime(2026, 3, 1)}, "time zone"),
    ],
)
def test_bad_queries_say_what_is_wrong(db: sqlite_utils.Database, kwargs: dict, message: str):
    fleet.prediction(db, T0, {"none": 0.9})
    query = {"model_name": "component_failure", "start": T0, "end": END, **kwargs}

    with pytest.raises(InvalidMetrics, match=message):
        ModelPerformanceMonitor(db).compute_metrics(**query)


def test_an_unknown_model_is_named(db: sqlite_utils.Database):
    with pytest.raises(UnknownModelName, match="unknown model 'nope'"):
        ModelPerformanceMonitor(db).compute_metrics("nope", T0, END)


def test_a_period_without_predictions_has_no_cells(db: sqlite_utils.Database):
    fleet.prediction(db, T0, {"none": 0.9})
    later = datetime(2027, 1, 1, tzinfo=UTC)

    result = ModelPerformanceMonitor(db).compute_metrics("component_failure", later, later + timedelta(days=1))

    assert (result["cells"], result["errors"], result["dead_letters"]) == ([], [], 0)
