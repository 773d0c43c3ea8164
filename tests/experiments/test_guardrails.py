"""Latency guardrails on a real SQLite store: p95 over model runs (batches), not over predictions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.experiments.guardrails import DEFAULT_GUARDRAILS, arm_figures, breaches
from cloud.storage import iso, open_database
from tests.postgres_run import database_at
from tests.rows import execute, insert_rows

START = datetime(2027, 1, 1, tzinfo=UTC)
EXPERIMENT = {
    "model_name": "component_failure",
    "champion_version": "1",
    "challenger_version": "2",
    "started_at": iso(START),
    "stopped_at": None,
}


def _batches(db, arm: str, version: str, latencies: list[float], heaters: int = 10) -> None:
    """One batch per latency: ``heaters`` predictions of one run on one gateway, sharing its latency."""
    rows = []
    for n, latency in enumerate(latencies):
        gateway = f"gw{n % 3}"
        made_at = iso(START + timedelta(hours=n // 3 + 1))
        for heater in range(heaters):
            rows.append(
                {
                    "prediction_id": f"{arm}-{n}-{heater}",
                    "arm": arm,
                    "device_id": f"{gateway}-h{heater}",
                    "device_type": "hpwh",
                    "prediction_type": "component_failure",
                    "model_name": "component_failure",
                    "model_version": version,
                    "outputs_json": "{}",
                    "latency_ms": latency,
                    "made_at": made_at,
                    "gateway_id": gateway,
                    "msg_id": f"m-{arm}-{n}",
                }
            )
    insert_rows(db, "predictions", rows)


@pytest.fixture
def db(tmp_path):
    database = open_database(database_at(tmp_path / "iotsphere.db"))
    yield database
    database.close()


def test_a_few_slow_first_batches_are_not_a_breach(db):
    # the first run on each of three gateways is slow (a busy CPU), the next ones quick: in the demo, judged over
    # predictions (10 per batch) this "breached" at 330 predictions, i.e. 33 batches, 3 of them slow
    _batches(db, "champion", "1", [0.3] * 120)
    _batches(db, "shadow", "2", [11.0] * 3 + [0.2] * 30)
    figures = arm_figures(db, EXPERIMENT)
    assert figures["challenger"]["batches"] == 33 and figures["challenger"]["predictions"] == 330
    assert figures["challenger"]["latency_p95_ms"] == pytest.approx(11.0)
    assert breaches(figures, DEFAULT_GUARDRAILS) == []  # too few batches to judge yet

    execute(db, "DELETE FROM predictions WHERE arm = 'shadow'")
    _batches(db, "shadow", "2", [11.0] * 3 + [0.2] * 117)
    figures = arm_figures(db, EXPERIMENT)
    assert figures["challenger"]["batches"] == 120
    assert figures["challenger"]["latency_p95_ms"] == pytest.approx(0.2)
    assert breaches(figures, DEFAULT_GUARDRAILS) == []


def test_a_challenger_slower_on_most_batches_breaches(db):
    _batches(db, "champion", "1", [3.0] * 120)
    _batches(db, "challenger", "2", [2.0] * 100 + [20.0] * 20)
    figures = arm_figures(db, EXPERIMENT)
    (breach,) = breaches(figures, DEFAULT_GUARDRAILS)
    assert "challenger p95 latency 20.00 ms is 6.67x the champion's, 17.00 ms slower" in breach
    assert "limit 1.5x and 5 ms" in breach


def test_a_large_ratio_between_microsecond_runs_is_not_a_breach(db):
    # a tree ensemble beside a logistic regression: 10x slower, and 0.45 ms more per run on the gateway
    _batches(db, "champion", "1", [0.05] * 120)
    _batches(db, "challenger", "2", [0.5] * 120)
    figures = arm_figures(db, EXPERIMENT)
    assert breaches(figures, DEFAULT_GUARDRAILS) == []
    assert breaches(figures, {**DEFAULT_GUARDRAILS, "latency_slack_ms": 0.1}) != []  # an operator can tighten it


def test_latency_is_not_judged_before_enough_batches(db):
    _batches(db, "champion", "1", [0.3] * 99, heaters=50)  # 4,950 predictions, but 99 runs
    _batches(db, "challenger", "2", [5.0] * 99, heaters=50)
    figures = arm_figures(db, EXPERIMENT)
    assert figures["champion"]["batches"] == 99
    assert breaches(figures, DEFAULT_GUARDRAILS) == []
