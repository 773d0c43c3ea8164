"""One gateway never blocks directing the others: each failure is the gateway's own, recorded, and retried.

Faults are real: a gateway that reported the largest director sequence there is, a value stored before sequences
were bounded, and SQLite triggers refusing one gateway's row, all in a real SQLite file.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.releases import director, keystore
from cloud.releases.director_worker import DirectorPublisher
from cloud.storage import iso, open_database
from shared.limits import MAX_SAFE_INT
from tests.releases.conftest import PASSPHRASE
from tests.releases.test_publisher import _retained, released  # noqa: F401 (fixture)

pytestmark = pytest.mark.mqtt

NAME = "component_failure"


@pytest.fixture
def db(released):  # noqa: F811
    database = open_database(released.database_path)
    yield database
    database.conn.close()


@pytest.fixture
def key(released):  # noqa: F811
    return keystore.director_key(released.keys_dir, PASSPHRASE)


def _see(db, gateway_id: str, sequence: int | None = None) -> None:
    db["gateways"].insert(
        {"gateway_id": gateway_id, "last_seen": iso(datetime.now(UTC)), "director_sequence": sequence}
    )


def _refuse_rows_for(db, gateway_id: str, how: str = "ABORT") -> None:
    """A real fault in the store for one gateway's row (as a full quota or a corrupt page would be)."""
    for verb in ("INSERT", "UPDATE"):
        db.execute(
            f"CREATE TRIGGER refuse_{verb.lower()} BEFORE {verb} ON director_documents "
            f"WHEN NEW.gateway_id = '{gateway_id}' BEGIN SELECT RAISE({how}, 'no room for {gateway_id}'); END"
        )


def test_a_gateway_at_the_sequence_bound_fails_alone_and_the_others_are_directed(released, db, key):  # noqa: F811
    for gateway_id, sequence in (("gw-a", 3), ("gw-max", MAX_SAFE_INT), ("gw-c", None)):
        _see(db, gateway_id, sequence)
    desired = {NAME: director.desired_model(released, NAME, "1")}

    issued = director.issue_documents(released, db, key, ["gw-a", "gw-max", "gw-c"], desired)

    assert [(d.signed.gateway_id, d.signed.sequence) for d in issued.documents] == [("gw-a", 4), ("gw-c", 1)]
    [failure] = issued.failures
    assert failure.gateway_id == "gw-max" and str(MAX_SAFE_INT) in failure.reason
    assert "re-provisioned" in failure.reason
    assert director.latest_document(db, "gw-max") is None
    assert [(f.gateway_id, f.reason) for f in director.failures(db)] == [("gw-max", failure.reason)]


def test_a_sequence_stored_before_the_bound_is_refused_for_that_gateway_only(released, db, key):  # noqa: F811
    _see(db, "gw-legacy", 2**62)  # SQLite holds it; the next sequence would not fit a director document
    _see(db, "gw-ok")
    issued = director.issue_documents(released, db, key, ["gw-legacy", "gw-ok"], {})
    assert [d.signed.gateway_id for d in issued.documents] == ["gw-ok"]
    assert issued.failures[0].gateway_id == "gw-legacy" and "outside 0..9007199254740991" in issued.failures[0].reason


def test_a_store_fault_for_one_gateway_is_recorded_and_the_publisher_retries_what_it_owes(
    released,  # noqa: F811
    db,
    key,
):
    for gateway_id in ("gw-a", "gw-b", "gw-c"):
        _see(db, gateway_id)
    director.issue_documents(
        released, db, key, ["gw-a", "gw-b", "gw-c"], {NAME: director.desired_model(released, NAME, "1")}
    )
    _refuse_rows_for(db, "gw-b")
    now = datetime.now(UTC)

    upgrade = {NAME: director.desired_model(released, NAME, "2")}
    issued = director.issue_documents(released, db, key, ["gw-a", "gw-b", "gw-c"], upgrade, now=now)

    assert [d.signed.gateway_id for d in issued.documents] == ["gw-a", "gw-c"]
    [failure] = issued.failures
    assert (failure.gateway_id, failure.failed_at) == ("gw-b", now)
    assert failure.reason == "IntegrityError: no room for gw-b"
    assert director.latest_document(db, "gw-b").signed.models[NAME].version == "1", "its old document is intact"

    publisher = DirectorPublisher(released, PASSPHRASE)
    assert publisher.run_once(db, now + timedelta(seconds=5))["retried"] == 0, "a retry waits RETRY_AFTER"
    again = publisher.run_once(db, now + director.RETRY_AFTER)
    assert (again["retried"], again["retried_failed"]) == (0, 1)
    assert director.failures(db)[0].attempts == 2
    assert director.failures_due(db, now + director.RETRY_AFTER * 2) == [], "the wait doubles per attempt"

    db.execute("DROP TRIGGER refuse_insert")
    db.execute("DROP TRIGGER refuse_update")
    retried = publisher.run_once(db, now + director.RETRY_AFTER * 3)
    assert retried["retried"] == 1 and director.failures(db) == []
    document = director.latest_document(db, "gw-b")
    assert document.signed.models[NAME].version == "2", "the retry delivers the upgrade the failure missed"
    retained = _retained(released, count=3)
    assert retained[f"{released.topic_prefix}/gw/gw-b/down/desired"].signed.sequence == document.signed.sequence


def test_a_fault_that_ends_the_transaction_stops_the_pass_and_stores_nothing(released, db, key):  # noqa: F811
    for gateway_id in ("gw-a", "gw-b"):
        _see(db, gateway_id)
    _refuse_rows_for(db, "gw-b", how="ROLLBACK")
    with pytest.raises(director.DirectingFailed, match="nothing was issued: IntegrityError: no room for gw-b"):
        director.issue_documents(
            released, db, key, ["gw-a", "gw-b"], {NAME: director.desired_model(released, NAME, "1")}
        )
    assert director.latest_document(db, "gw-a") is None and director.failures(db) == []


def test_a_new_gateway_that_cannot_be_directed_waits_for_its_retry(released, db, key):  # noqa: F811
    director.set_fleet_desired(db, {NAME: director.desired_model(released, NAME, "1")})
    _see(db, "gw-new", MAX_SAFE_INT)
    publisher = DirectorPublisher(released, PASSPHRASE)
    now = datetime.now(UTC)
    first = publisher.run_once(db, now)
    assert (first["issued"], first["issued_failed"]) == (0, 1)
    again = publisher.run_once(db, now + timedelta(seconds=1))
    assert (again["issued_failed"], again["retried_failed"]) == (0, 0), "not every pass: the retry's backoff holds"
    assert director.failures(db)[0].attempts == 1
