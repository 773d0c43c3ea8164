from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np

from cloud.training.labels import CLASSES, failure_times, label_rows

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _t(hours: float) -> np.datetime64:
    return np.datetime64((T0 + timedelta(hours=hours)).replace(tzinfo=None), "s")


def _labels(rows, failures, horizon_h=48, observed_until_h=200):
    devices = np.array(["a", "b"])
    events = [SimpleNamespace(device_id=d, component=c, failed_at=T0 + timedelta(hours=h)) for d, c, h in failures]
    return label_rows(
        np.array([r[0] for r in rows]),
        np.array([_t(r[1]) for r in rows], dtype="datetime64[s]"),
        failure_times(events, devices),
        timedelta(hours=horizon_h),
        _t(observed_until_h),
    ).tolist()


def test_row_is_labelled_with_the_first_failure_after_it_within_the_horizon():
    rows = [(0, 0), (0, 10), (0, 30), (0, 60), (1, 30)]
    failures = [("a", "sediment", 50), ("a", "thermostat", 70)]
    sediment, thermostat = CLASSES.index("sediment"), CLASSES.index("thermostat")
    # hour 0: sediment at 50 is beyond 48 h → none; hour 10 and 30 → sediment; 60 → thermostat at 70
    assert _labels(rows, failures) == [0, sediment, sediment, thermostat, 0]


def test_failure_at_the_row_time_does_not_label_it_point_in_time():
    assert _labels([(0, 50)], [("a", "sediment", 50)]) == [0]


def test_rows_whose_horizon_runs_past_the_period_are_censored_failure_or_not():
    # a tank leak at hour 170, inside the last 48 h of a period observed until hour 200: the rows before it whose
    # horizon ends after hour 200 are dropped exactly as the healthy heater's rows of the same hours
    rows = [(0, 100), (0, 140), (0, 152), (0, 160), (1, 140), (1, 152), (1, 160)]
    failures = [("a", "tank_leak", 170)]
    leak = CLASSES.index("tank_leak")
    assert _labels(rows, failures, observed_until_h=200) == [0, leak, leak, -1, 0, 0, -1]
    assert _labels(rows, failures, observed_until_h=218) == [0, leak, leak, leak, 0, 0, 0]


def test_no_failures_at_all():
    assert _labels([(0, 0), (1, 190)], []) == [0, -1]


def _history(heaters: int, days: int, failures: list[tuple[int, float]]):
    """A hand-made history: a row per heater every 6 hours, and sediment failures (heater, day) repaired a day on."""
    from firmware_sim.faults import FailureEvent
    from firmware_sim.history import History
    from shared.messages import Component

    ends = np.datetime64(T0.replace(tzinfo=None), "s") + np.arange(1, days * 4 + 1) * np.timedelta64(6, "h")
    events = [
        FailureEvent(f"h{h:03d}", Component.SEDIMENT, T0 + timedelta(days=d), T0 + timedelta(days=d + 1), 0)
        for h, d in failures
    ]
    return History(
        feature_names=["x"],
        feature_set_version="test",
        device_ids=np.array([f"h{h:03d}" for h in range(heaters)]),
        device_types=np.array(["t"] * heaters),
        row_device=np.tile(np.arange(heaters), ends.size),
        window_end=np.repeat(ends, heaters),
        features=np.zeros((ends.size * heaters, 1), np.float32),
        usage_next_24h_litres=np.zeros(ends.size * heaters, np.float32),
        failures=events,
    )


def test_technician_labels_come_from_findings_received_by_the_end_and_wait_for_the_slowest_one():
    from cloud.training.data import rows_from_history
    from firmware_sim.findings import FINDING_RATES, technician_findings
    from shared.messages import PredictionType

    history = _history(200, 90, [(h, 5 + (h * 0.41) % 84) for h in range(200)])
    horizon = timedelta(days=14)
    end = history.window_end.max()
    truth = rows_from_history(history, PredictionType.COMPONENT_FAILURE, horizon)
    found = rows_from_history(history, PredictionType.COMPONENT_FAILURE, horizon, labels="technician")
    day = np.timedelta64(1, "D")
    assert (truth.window_ends.max() + horizon - end) / day > -0.5  # ground truth: labelled up to the end
    settling = np.timedelta64(int(FINDING_RATES.settling.total_seconds()), "s")
    assert found.window_ends.max() + horizon <= end - settling  # findings: a row also waits for the slowest one
    assert (found.window_ends.max() + horizon + settling - end) / day > -0.5
    # the labels read the findings received by the end, dated by the visit; missed failures label nothing
    received = [
        f for f in technician_findings(history.failures) if np.datetime64(f.received_at.replace(tzinfo=None)) <= end
    ]
    assert len(received) < 0.95 * len(history.failures)
    assert sorted(found.failures.time.tolist()) == sorted(
        np.datetime64(f.observed_at.replace(tzinfo=None), "s").tolist() for f in received
    )
    positives = int((found.targets > 0).sum())
    assert 0 < positives != int((truth.targets[: found.targets.size] > 0).sum())


def test_an_alarm_that_a_worn_parts_replacement_follows_is_a_true_catch_whatever_the_labels():
    """A technician sent on an alarm replaced the worn part: the failure it foretold never happened. The
    replacement labels the rows before it and makes the dispatch true, with ground truth and findings alike;
    read without it (the failure that would have followed, 20 days later) the same dispatch would be false."""
    from dataclasses import replace

    from cloud.training import reliability
    from cloud.training.data import rows_from_history
    from firmware_sim.faults import PreventiveRepair
    from shared.messages import Component, PredictionType

    horizon = timedelta(days=14)
    plain = _history(4, 90, [])
    visit = T0 + timedelta(days=40)
    repair = PreventiveRepair("h001", Component.SEDIMENT, visit, visit + timedelta(days=20))
    watched = replace(plain, preventive=[repair])
    hidden = _history(4, 90, [(1, 60)])  # the failure had nobody replaced the part

    def dispatches(history, labels):
        rows = rows_from_history(history, PredictionType.COMPONENT_FAILURE, horizon, labels=labels)
        alarm = (rows.device_ids == "h001") & (rows.window_ends == _t(38 * 24))  # two days before the visit
        return rows, reliability.outcome(reliability.Fleet.of(rows, horizon), "sediment", alarm.astype(float), 0.5)

    for labels in ("ground_truth", "technician"):
        rows, caught = dispatches(watched, labels)
        assert (caught.true.sum(), caught.false.sum(), caught.caught.sum(), caught.failures.sum()) == (1, 0, 1, 1)
        assert caught.lead_days.tolist() == [2.0]  # to the visit: the warning the technician had
        sediment = CLASSES.index("sediment")
        labelled = rows.targets[(rows.device_ids == "h001") & (rows.window_ends < _t(40 * 24))]
        assert (labelled == sediment).sum() == 14 * 4  # the 14 days before the visit, a row every 6 h
    _, missed = dispatches(hidden, "ground_truth")
    assert (missed.true.sum(), missed.false.sum(), missed.early_seen.sum()) == (0, 1, 1)  # an early warning at best
