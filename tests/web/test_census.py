"""The deployment census the Fleet page counts and filters by: taken from a real store in a background thread, at
most its age old, kept when a later one fails."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloud.data import director, fleet
from cloud.data.connections import write_transaction
from cloud.storage import open_database
from cloud.web.census import Census, CensusTaker, take

NAME = "component_failure"
DEADLINE = timedelta(minutes=30)


def _direct(database: Path, gateway_id: str, kinds: tuple[str, ...]) -> None:
    """Direct the gateway to version 3 an hour ago (past the deadline); it reports ``kinds`` of that document."""
    issued_at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = {"signed": {"issued_at": issued_at, "models": {NAME: {"version": "3"}}}}
    digest = gateway_id[-1] * 64
    db = open_database(database)
    try:
        with write_transaction(db) as connection:
            director.store_document(connection, gateway_id, 4, json.dumps(document))
            director.record_issued(connection, digest, gateway_id, 4, "2026-12-07T10:00:00.000000Z")
            fleet.add_events(
                connection,
                [
                    (
                        f"{gateway_id}-{kind}",
                        gateway_id,
                        kind,
                        NAME,
                        "3",
                        4,
                        None,
                        None,
                        f"2026-12-07T10:0{i}:00.000000Z",
                        digest,
                    )
                    for i, kind in enumerate(kinds)
                ],  # fmt: skip
            )
    finally:
        db.conn.close()


def test_a_census_lists_each_states_gateways_in_id_order(tmp_path: Path) -> None:
    database = tmp_path / "cloud.db"
    for gateway_id in ("gw-c", "gw-a", "gw-b"):
        _direct(database, gateway_id, ("download",) if gateway_id != "gw-b" else ("download", "activate", "commit"))
    census = take(str(database), DEADLINE)
    assert census.gateways["overdue"] == ["gw-a", "gw-c"] and census.gateways["committed"] == ["gw-b"]
    assert census.count("overdue") == 2 and census.count("pending") == 0
    assert census.after("overdue", "gw-a") == ["gw-c"] and census.after("overdue", None, "gw-c") == ["gw-c"]
    assert census.after("overdue", None, "gw-b") == [] and census.after("rejected", None) == []
    not_yet = take(str(database), timedelta(hours=2))  # the same deployments within a longer deadline
    assert not_yet.gateways["downloading"] == ["gw-a", "gw-c"] and not_yet.count("overdue") == 0


def test_the_taker_counts_in_the_background_and_again_once_its_census_is_old(tmp_path: Path) -> None:
    database = tmp_path / "cloud.db"
    _direct(database, "gw-a", ("download",))
    taker = CensusTaker(lambda: take(str(database), DEADLINE), max_age_s=0.2)
    first = taker.first()
    assert first is not None and first.gateways["overdue"] == ["gw-a"]
    assert taker.latest() is first  # young enough: no new census
    _direct(database, "gw-b", ("download",))
    time.sleep(0.3)
    deadline = time.monotonic() + 10
    while (latest := taker.latest()) is first or latest is None or latest.count("overdue") < 2:
        assert time.monotonic() < deadline, "no second census"
        time.sleep(0.05)
    assert latest.gateways["overdue"] == ["gw-a", "gw-b"] and latest.taken_at > first.taken_at


def test_a_failed_census_keeps_the_last_one_and_a_first_that_fails_is_none(tmp_path: Path) -> None:
    database = tmp_path / "cloud.db"
    _direct(database, "gw-a", ("download",))
    missing = tmp_path / "gone.db"  # storage.connect never creates a database: taking a census of it fails
    assert CensusTaker(lambda: take(str(missing), DEADLINE)).first() is None
    targets = [database]
    taker = CensusTaker(lambda: take(str(targets[0]), DEADLINE), max_age_s=0)
    kept = taker.first()
    assert isinstance(kept, Census)
    targets[0] = missing
    assert taker.latest() is kept  # starts a census of the missing file
    time.sleep(0.5)
    assert taker.first(timeout_s=5) is kept
