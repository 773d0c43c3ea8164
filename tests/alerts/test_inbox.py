"""The alert inbox on a real SQLite file, fed by the real services: raised once, cleared when a state ends,
acknowledged and resolved with who and when, audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.alerts.inbox import SYSTEM, AlertInbox
from cloud.audit import AuditLog
from cloud.data import fleet
from cloud.data.connections import write_transaction
from cloud.data.times import iso
from cloud.errors import NotFound, Refused
from cloud.pipeline.runs import RunStore
from cloud.storage import open_database
from tests.postgres_run import database_at

NOW = datetime.now(UTC)


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(database_at(tmp_path / "cloud" / "iotsphere.db"))
    yield database
    database.close()


def _failed_run(db, error: str) -> str:
    runs = RunStore(db)
    run = runs.create("component_failure", NOW - timedelta(days=30), NOW, "test")
    runs.claim(run.run_id)
    runs.fail(run.run_id, error)
    return run.run_id


def _status(db, gateway_id: str, at: datetime) -> None:
    row = (gateway_id, iso(at), iso(at), 1, "0.1.0", 1, '{"online": true}')
    with write_transaction(db) as connection:
        fleet.record_statuses(connection, [row])


def test_a_failed_training_run_raises_one_alert_however_many_passes(db) -> None:
    run_id = _failed_run(db, "no feature rows between the dates\ntraceback...")
    inbox = AlertInbox(db)

    first = inbox.scan()
    again = inbox.scan()

    assert len(first.raised) == 1 and again.raised == [] and first.failed == []
    [alert] = inbox.page()
    assert alert.kind == "training_failed" and run_id in alert.subject
    assert alert.summary == "no feature rows between the dates" and alert.state == "open"
    assert alert.labels == {"alertname": "training_failed", "severity": "warning", "model": "component_failure"}


def test_a_silent_gateway_is_named_offline_and_its_alert_clears_when_it_speaks_again(db, monkeypatch) -> None:
    monkeypatch.setenv("IOTSPHERE_ALERT_GATEWAY_OFFLINE_AFTER_S", "600")
    _status(db, "gw-quiet", NOW - timedelta(minutes=20))
    _status(db, "gw-fine", NOW - timedelta(minutes=2))
    _status(db, "gw-gone-for-good", NOW - timedelta(days=30))  # beyond the lookback: not named on every pass
    inbox = AlertInbox(db)

    raised = inbox.scan(NOW).raised
    [alert] = inbox.page("open")
    assert raised == [alert.id] and alert.subject == "gateway gw-quiet"

    _status(db, "gw-quiet", NOW)
    assert inbox.scan(NOW).cleared == [alert.id]
    cleared = inbox.get(alert.id)
    assert cleared.state == "resolved" and cleared.resolved_by == SYSTEM


def test_people_acknowledge_then_resolve_with_who_and_when_and_the_audit_log_says_so(db) -> None:
    _failed_run(db, "boom")
    inbox = AlertInbox(db)
    [alert_id] = inbox.scan().raised

    acknowledged = inbox.acknowledge(alert_id, "key:ops")
    assert acknowledged.state == "acknowledged" and acknowledged.acknowledged_by == "key:ops"
    with pytest.raises(Refused, match="acknowledged"):
        inbox.acknowledge(alert_id, "key:other")
    resolved = inbox.resolve(alert_id, "key:lead")
    assert (resolved.state, resolved.resolved_by, resolved.acknowledged_by) == ("resolved", "key:lead", "key:ops")
    with pytest.raises(Refused):
        inbox.resolve(alert_id, "key:lead")
    with pytest.raises(NotFound):
        inbox.resolve(999, "key:lead")

    actions = [(entry.actor, entry.action) for entry in AuditLog(db).entries(limit=1000)]
    assert ("key:ops", "alerts.acknowledge") in actions and ("key:lead", "alerts.resolve") in actions
    assert inbox.counts() == {"open": 0, "acknowledged": 0, "resolved": 1}


def test_a_broken_source_is_reported_and_the_others_still_run(db) -> None:
    from cloud.alerts.sources import SOURCES, Source

    def broken(*_args):
        raise RuntimeError("table missing")

    _failed_run(db, "boom")
    result = AlertInbox(db, (Source("broken", False, broken), *SOURCES)).scan()

    assert result.failed == ["broken"] and len(result.raised) == 1


def test_pages_go_back_in_time_without_gaps(db) -> None:
    for n in range(7):
        _failed_run(db, f"failure {n}")
    inbox = AlertInbox(db)
    inbox.scan()

    seen, before = [], None
    while page := inbox.page(before_id=before, limit=3):
        seen += [alert.id for alert in page]
        before = page[-1].id
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 7
