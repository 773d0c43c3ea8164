"""The Fleet and Gateway pages over HTTP on a real server: counts by state, filters and keyset pages of gateways,
a gateway's status per model (what it runs beside what it was directed to) and its timeline merged from every
source, paged newest first; in Debian's Chromium, clean, accessible and without a control for anyone to misuse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cloud.api.roles import Role
from cloud.data import director, fleet, predictions
from cloud.data.connections import write_transaction
from cloud.data.times import iso
from cloud.storage import open_database
from cloud.web.pages import fleet as fleet_page
from tests.api.conftest import ServedCloud, served_cloud
from tests.web.conftest import SCREENSHOTS, BrowserLog, offline_page, serious_accessibility_violations, sign_in

NAME = "component_failure"
DIGEST = "d" * 64
FORGED = "f" * 64


def _status(gateway_id: str, seen: datetime, online: bool, version: str) -> tuple:
    status = {"online": online, "models": [{"model_name": NAME, "active_version": version, "state": "committed"}]}
    return (gateway_id, iso(seen), iso(seen), int(online), "0.4.0", 7, json.dumps(status))


def _seed(db) -> None:
    """gw-000..gw-059 online on version 2 (gw-003 offline, gw-004 stale, gw-01x on version 3); gw-000 directed to
    version 3, rejected it, and has an outcome and a forged document in its timeline; gw-001, gw-011, gw-021 and
    gw-002 directed to version 3 an hour ago (past the 30-minute deadline): the first three still downloading it
    (overdue), gw-002 committed."""
    now = datetime.now(UTC)  # when the test seeds, not when the module was collected: "stale" is relative to now
    statuses = []
    for n in range(60):
        seen = now - timedelta(hours=3) if n == 4 else now
        statuses.append(_status(f"gw-{n:03d}", seen, n != 3, "3" if 10 <= n < 20 else "2"))
    issued_at = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # past the 30-minute deadline
    document = {"signed": {"issued_at": issued_at, "models": {NAME: {"version": "3"}}}}
    with write_transaction(db) as connection:
        fleet.record_statuses(connection, statuses)
        fleet.record_devices_seen(connection, [("wh-1", "gw-000", "heater", "t", "t")])
        director.store_document(connection, "gw-000", 8, json.dumps(document))
        director.record_issued(connection, DIGEST, "gw-000", 8, "2026-12-07T10:00:00.000000Z")
        events = [
            ("e1", "download", None, None, "2026-12-07T10:01:00.000000Z", DIGEST),
            ("e2", "reject", "golden_vectors", "output differs by 0.2", "2026-12-07T10:02:00.000000Z", DIGEST),
            ("e3", "reject", "director.signature", "bad signature", "2026-12-07T10:03:00.000000Z", FORGED),
        ]
        fleet.add_events(
            connection,
            [(m, "gw-000", kind, NAME, "3", 8, rule, detail, at, d) for m, kind, rule, detail, at, d in events],
        )
        directed = [(f"gw-0{n}1", ("download",)) for n in range(3)] + [("gw-002", ("download", "activate", "commit"))]
        for gateway_id, kinds in directed:
            digest = gateway_id[-2:] * 32
            director.store_document(connection, gateway_id, 8, json.dumps(document))
            director.record_issued(connection, digest, gateway_id, 8, "2026-12-07T10:00:00.000000Z")
            at = "2026-12-07T10:0{}:00.000000Z"
            fleet.add_events(
                connection,
                [
                    (f"{gateway_id}-{k}", gateway_id, k, NAME, "3", 8, None, None, at.format(i), digest)
                    for i, k in enumerate(kinds)
                ],  # fmt: skip
            )
        outcome = {
            "outcome_id": "o1",
            "device_id": "wh-1",
            "source": "technician",
            "observed_at": "2026-12-07T10:04:00.000000Z",
            "component": "anode",
            "result": "replaced",
            "technician": "ana",
            "gateway_id": "gw-000",
            "received_at": "2026-12-07T10:05:00.000000Z",
        }
        predictions.add_outcome_once(connection, outcome)


@pytest.fixture
def cloud(config) -> Iterator[ServedCloud]:
    db = open_database(config.database_path)
    try:
        _seed(db)
    finally:
        db.conn.close()
    with served_cloud(config) as served:
        yield served


def _rows(page: str) -> list[str]:
    return [line.split('">')[1].split("<")[0] for line in page.splitlines() if '<td><a href="/fleet/gw-' in line]


def test_the_fleet_is_counted_by_state_and_paged_by_id(cloud: ServedCloud) -> None:
    with sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
        first = viewer.get("/fleet")
        assert first.status_code == 200
        assert _rows(first.text) == [f"gw-{n:03d}" for n in range(fleet_page.PAGE)]
        counts = viewer.get("/fleet/~counts").text
        assert '<strong class="ok">58</strong> online' in counts and "1</strong> offline" in counts
        assert "1</strong> stale" in counts
        assert 'component_failure v3: <span class="bad">rejected</span>' in first.text  # gw-000's deployment
        second = viewer.get("/fleet", params={"after": "gw-049"})
        assert _rows(second.text) == [f"gw-{n:03d}" for n in range(50, 60)] and "Next page" not in second.text


def test_the_fleet_is_filtered_by_id_prefix_state_and_version(cloud: ServedCloud) -> None:
    with sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
        assert _rows(viewer.get("/fleet", params={"q": "gw-05"}).text) == [f"gw-{n:03d}" for n in range(50, 60)]
        assert _rows(viewer.get("/fleet", params={"state": "stale"}).text) == ["gw-004"]
        assert _rows(viewer.get("/fleet", params={"state": "offline"}).text) == ["gw-003"]
        served_3 = viewer.get("/fleet", params={"version": "3", "q": "gw-01"}).text
        assert _rows(served_3) == [f"gw-{n:03d}" for n in range(10, 20)]
        refused = viewer.get("/fleet", params={"state": "asleep"})
        assert refused.status_code == 400 and "state must be one of" in refused.text


def test_the_fleet_is_counted_and_filtered_by_deployment_state(cloud: ServedCloud) -> None:
    with sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
        counting = viewer.get("/fleet/~counts").text  # the first ask starts the process's first census
        assert "Counting the gateways' deployment states" in counting.replace("&#39;", "'")
        assert 'hx-trigger="every 1s"' in counting
        overdue = viewer.get("/fleet", params={"deployment": "overdue"})  # waits for that census
        assert overdue.status_code == 200 and _rows(overdue.text) == ["gw-001", "gw-011", "gw-021"]
        assert "overdue (still downloading)" in overdue.text
        assert _rows(viewer.get("/fleet", params={"deployment": "rejected"}).text) == ["gw-000"]
        assert _rows(viewer.get("/fleet", params={"deployment": "committed"}).text) == ["gw-002"]
        assert _rows(viewer.get("/fleet", params={"deployment": "probation"}).text) == []
        assert _rows(viewer.get("/fleet", params={"deployment": "overdue", "q": "gw-00"}).text) == ["gw-001"]
        assert _rows(viewer.get("/fleet", params={"deployment": "overdue", "q": "gw-01"}).text) == ["gw-011"]
        assert _rows(viewer.get("/fleet", params={"deployment": "overdue", "q": "gw-05"}).text) == []
        assert _rows(viewer.get("/fleet", params={"deployment": "overdue", "state": "offline"}).text) == []
        counts = viewer.get("/fleet/~counts").text
        assert (
            '<strong class="bad">3</strong> overdue' in counts and '<strong class="bad">1</strong> rejected' in counts
        )
        assert '<strong class="ok">1</strong> committed' in counts and "<strong>0</strong> probation" in counts
        assert 'href="/fleet?deployment=overdue"' in counts and 'hx-trigger="every 10s"' in counts
        refused = viewer.get("/fleet", params={"deployment": "lost"})
        assert refused.status_code == 400 and "deployment must be one of" in refused.text


def test_a_deployment_state_is_paged_through_the_census_a_chunk_at_a_time(cloud: ServedCloud, monkeypatch) -> None:
    monkeypatch.setattr(fleet_page, "PAGE", 2)
    monkeypatch.setattr(fleet_page, "CENSUS_CHUNK", 1)
    with sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
        first = viewer.get("/fleet", params={"deployment": "overdue"}).text
        assert _rows(first) == ["gw-001", "gw-011"]
        assert 'href="/fleet?deployment=overdue&amp;after=gw-011">Next page' in first
        second = viewer.get("/fleet", params={"deployment": "overdue", "after": "gw-011"}).text
        assert _rows(second) == ["gw-021"] and "Next page" not in second
        online_on_3 = {"deployment": "overdue", "state": "online", "version": "3"}
        assert _rows(viewer.get("/fleet", params=online_on_3).text) == ["gw-011"]  # read past gw-001's chunk


def test_a_gateway_shows_its_status_per_model_and_one_timeline_newest_first(cloud: ServedCloud, monkeypatch) -> None:
    with sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
        page = viewer.get("/fleet/gw-000").text
        assert 'v2 <span class="muted">(committed)</span>' in page  # runs
        assert 'v3 <span class="muted">document #8</span>' in page  # directed to
        assert "[golden_vectors] output differs by 0.2" in page
        timeline = page[page.index("<h2>Timeline</h2>") :]
        order = ["anode replaced", "security: a document never issued", "[golden_vectors]", "download", "#8 issued"]
        positions = [timeline.index(text) for text in order]
        assert positions == sorted(positions)
        assert "Older" not in timeline
        missing = viewer.get("/fleet/gw-999")
        assert missing.status_code == 404 and "gw-999" in missing.text


def test_the_status_per_model_the_gateway_page_polls_follows_the_gateways_events(cloud: ServedCloud) -> None:
    with sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
        assert 'hx-get="/fleet/gw-000/~status" hx-trigger="every 10s"' in viewer.get("/fleet/gw-000").text
        assert '<span class="bad">rejected</span>' in viewer.get("/fleet/gw-000/~status").text
        db = open_database(cloud.config.database_path)
        try:
            with write_transaction(db) as connection:
                retried = ("e4", "gw-000", "activate", NAME, "3", 8, None, None, "2026-12-07T10:06:00.000000Z", DIGEST)
                fleet.add_events(connection, [retried])
        finally:
            db.conn.close()
        status = viewer.get("/fleet/gw-000/~status").text
        assert "overdue (still probation)" in status and "rejected" not in status


def test_the_timeline_pages_through_every_source_without_skipping_or_repeating(cloud: ServedCloud, monkeypatch) -> None:
    monkeypatch.setattr(fleet_page, "TIMELINE_PAGE", 2)
    seen: list[str] = []
    with sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
        url = "/fleet/gw-000"
        while url:
            page = viewer.get(url).text
            body = page[page.index("<h2>Timeline</h2>") :]
            seen += [row.split("</tr>")[0] for row in body.split("<tr>") if '<time datetime="2026' in row]
            marker = 'href="/fleet/gw-000?before='
            url = body[body.index(marker) + 6 : body.index('"', body.index(marker) + 6)] if marker in body else ""
            url = url.replace("&amp;", "&")
    # issued, download, two rejects, the forged one's security event at the same instant, outcome
    assert len(seen) == 6 and len(set(seen)) == 6


def test_anyone_not_signed_in_is_sent_to_sign_in(cloud: ServedCloud) -> None:
    answer = cloud.http.get("/fleet/gw-000", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/fleet/gw-000"


def test_the_pages_render_clean_and_accessible_in_a_browser(cloud: ServedCloud, browser) -> None:
    log = BrowserLog()
    page = offline_page(browser, cloud.base_url, log)
    page.goto(f"{cloud.base_url}/login?next=/fleet")
    page.fill("#api_key", cloud.tokens[Role.VIEWER])
    page.click("button[type=submit]")
    page.wait_for_url(f"{cloud.base_url}/fleet")
    page.wait_for_selector("#deployment-counts time")  # the first census's counts, polled in without a reload
    page.wait_for_load_state("networkidle")
    assert serious_accessibility_violations(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "fleet.png"), full_page=True)
    page.select_option("#deployment", "overdue")
    page.click("button:has-text('Filter')")
    page.wait_for_url("**/fleet?q=&state=&version=&deployment=overdue")
    page.wait_for_load_state("networkidle")
    assert "overdue (still downloading)" in page.locator("main").inner_text()
    assert page.locator("#deployment option[selected]").inner_text() == "overdue"
    assert serious_accessibility_violations(page) == []
    page.goto(f"{cloud.base_url}/fleet")
    page.fill("#q", "gw-00")
    page.select_option("#state", "offline")
    page.click("button:has-text('Filter')")
    page.wait_for_url("**/fleet?q=gw-00&state=offline&version=&deployment=")
    page.click("a[href='/fleet/gw-003']")
    page.wait_for_url(f"{cloud.base_url}/fleet/gw-003")
    page.wait_for_load_state("networkidle")
    assert "offline" in page.locator("main").inner_text()
    page.goto(f"{cloud.base_url}/fleet/gw-000")
    page.wait_for_load_state("networkidle")
    assert serious_accessibility_violations(page) == []
    page.screenshot(path=str(SCREENSHOTS / "gateway.png"), full_page=True)
    assert log.console_errors == [] and log.failed == [] and log.refused == []
