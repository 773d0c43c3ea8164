"""The training page: runs (a live one's status and log polled until it ends), schedules added, edited and
deleted, a retraining policy changed and a decision's evidence, with the API's roles and the session's CSRF token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.pipeline.runs import RunStore
from cloud.pipeline.schedules import ScheduleStore
from cloud.retraining.policy import PolicyStore
from cloud.retraining.service import RetrainingService
from cloud.storage import open_database
from cloud.web.auth import CSRF_FIELD
from tests.api.conftest import ServedCloud, served_cloud
from tests.web.conftest import SCREENSHOTS, BrowserLog, csrf_of, offline_page, serious_accessibility_violations, sign_in

MODEL = "component_failure"
JANUARY = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))


@pytest.fixture
def cloud(config: CloudConfig) -> Iterator[tuple[ServedCloud, dict[str, str]]]:
    """A running run with a log line, a failed run, a queued one, and a retraining check's decision."""
    db = open_database(config.database_path)
    try:
        runs = RunStore(db)
        running, failed, queued = (runs.create(MODEL, *JANUARY, "cli:alice") for _ in range(3))
        runs.claim(failed.run_id)
        runs.fail(failed.run_id, "no feature rows between 2026-01-01 and 2026-02-01")
        runs.claim(running.run_id)
        runs.progress(running.run_id, "fitting", 0.4)
        runs.log(running.run_id, "building the dataset")
        RetrainingService(db, config).check(MODEL, actor="cli:alice")
    finally:
        db.conn.close()
    with served_cloud(config) as served:
        yield served, {"running": running.run_id, "failed": failed.run_id, "queued": queued.run_id}


def test_a_viewer_sees_runs_and_decisions_but_no_control_and_cannot_post(cloud) -> None:
    served, ids = cloud
    with sign_in(served.base_url, served.tokens[Role.VIEWER]) as viewer:
        page = viewer.get("/training")
        assert page.status_code == 200
        assert all(run_id in page.text for run_id in ids.values())
        assert "no feature rows" in page.text and "no_trigger" in page.text and "no drift check" in page.text
        for control in ("Queue the run", "Add the schedule", "Delete", "/training/policies/"):
            assert control not in page.text
        run_page = viewer.get(f"/training/runs/{ids['queued']}")
        assert run_page.status_code == 200 and "Cancel the run" not in run_page.text
        token = csrf_of(viewer)
        forged = {"model_name": MODEL, "schedule": "daily", CSRF_FIELD: token}
        assert viewer.post("/training/schedules", data=forged).status_code == 403
        assert viewer.post(f"/training/runs/{ids['queued']}/cancel", data={CSRF_FIELD: token}).status_code == 403
        assert viewer.get(f"/training/policies/{MODEL}").status_code == 403


def test_an_operator_manages_schedules_runs_and_a_policy(cloud) -> None:
    served, ids = cloud
    with sign_in(served.base_url, served.tokens[Role.OPERATOR]) as operator:
        token = csrf_of(operator)
        sent = {"model_name": MODEL, "schedule": "weekly", "window_days": "30", "margin": "0.02"}
        assert operator.post("/training/schedules", data=sent).status_code == 403  # no CSRF token
        assert operator.post("/training/schedules", data=sent | {CSRF_FIELD: token}).status_code == 303
        bad = operator.post("/training/schedules", data=sent | {"schedule": "sometimes", CSRF_FIELD: token})
        assert bad.status_code == 400 and "invalid schedule" in bad.text

        db = open_database(served.config.database_path)
        try:
            [made] = ScheduleStore(db).list()
            assert (made.cron, made.window_days, made.options["margin"]) == ("@weekly", 30, 0.02)
            assert f"/training/schedules/{made.schedule_id}/edit" in operator.get("/training").text
            edit = operator.get(f"/training/schedules/{made.schedule_id}/edit")
            assert edit.status_code == 200 and 'value="weekly"' in edit.text
            edited = sent | {"schedule": "0 3 * * 1", "window_days": "60", CSRF_FIELD: token}
            assert operator.post(f"/training/schedules/{made.schedule_id}", data=edited).status_code == 303
            [replaced] = ScheduleStore(db).list()
            assert (replaced.cron, replaced.window_days) == ("0 3 * * 1", 60)
            deleted = operator.post(f"/training/schedules/{replaced.schedule_id}/delete", data={CSRF_FIELD: token})
            assert deleted.status_code == 303 and ScheduleStore(db).list() == []

            cancelled = operator.post(f"/training/runs/{ids['queued']}/cancel", data={CSRF_FIELD: token})
            assert cancelled.status_code == 303 and RunStore(db).get(ids["queued"]).status == "cancelled"
            refused = operator.post(f"/training/runs/{ids['running']}/cancel", data={CSRF_FIELD: token})
            assert refused.status_code == 409 and "only a queued run" in refused.text
            queued = operator.post(
                "/training/runs",
                data={"model_name": MODEL, "start": "2026-01-01", "end": "2026-02-01", CSRF_FIELD: token},
            )
            assert queued.status_code == 303
            run_id = queued.headers["location"].rsplit("/", 1)[1]
            assert RunStore(db).get(run_id).requested_by.startswith("key:")

            form = operator.get(f"/training/policies/{MODEL}").text
            assert 'name="cooldown_hours"' in form
            policy = {name: value for name, value in PolicyStore(db).get(MODEL).__dict__.items() if value is not False}
            changes = {k: str(v).lower() if v is True else str(v) for k, v in policy.items()}
            changes |= {"enabled": "true", "cooldown_hours": "12", CSRF_FIELD: token}
            assert operator.post(f"/training/policies/{MODEL}", data=changes).status_code == 303
            stored = PolicyStore(db).get(MODEL)
            assert stored.enabled and stored.cooldown_hours == 12.0 and stored.feature_drift
            wrong = operator.post(f"/training/policies/{MODEL}", data=changes | {"alpha": "0.9"})
            assert wrong.status_code == 400 and "alpha" in wrong.text
        finally:
            db.conn.close()


def test_a_live_run_is_polled_until_it_ends_and_a_finished_one_is_not(cloud) -> None:
    served, ids = cloud
    with sign_in(served.base_url, served.tokens[Role.VIEWER]) as viewer:
        live = viewer.get(f"/training/runs/{ids['running']}/status").text
        assert 'hx-trigger="every 2s"' in live and "building the dataset" in live and "fitting" in live
        ended = viewer.get(f"/training/runs/{ids['failed']}/status").text
        assert "hx-trigger" not in ended and "no feature rows" in ended
        table = viewer.get("/training/runs-table", params={"model": MODEL}).text
        assert 'hx-trigger="every 5s"' in table and ids["running"] in table
        assert viewer.get("/training/runs/nosuchrun").status_code == 404


def test_the_run_page_follows_a_run_to_its_end_without_reloading(cloud, browser) -> None:
    served, ids = cloud
    log = BrowserLog()
    page = offline_page(browser, served.base_url, log, viewport={"width": 1280, "height": 900})
    page.goto(f"{served.base_url}/login?next=/training")
    page.fill("#api_key", served.tokens[Role.OPERATOR])
    page.click("button[type=submit]")
    page.wait_for_url(f"{served.base_url}/training")
    assert serious_accessibility_violations(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "training.png"), full_page=True)
    page.evaluate("window.__same_page = true")  # gone if the page reloads
    db = open_database(served.config.database_path)
    try:
        RunStore(db).progress(ids["running"], "evaluating", 0.8)
    finally:
        db.conn.close()
    page.wait_for_function("document.querySelector('#runs-table').innerText.includes('evaluating')", timeout=15_000)
    assert page.evaluate("window.__same_page") is True

    page.click(f"a:has-text('{ids['running']}')")
    page.wait_for_selector("#run-log")
    assert serious_accessibility_violations(page) == []
    page.evaluate("window.__same_page = true")
    db = open_database(served.config.database_path)
    try:
        RunStore(db).log(ids["running"], "challenger beats the champion")
        RunStore(db).finish(ids["running"], "7", {"gate": {"passed": True}})
    finally:
        db.conn.close()
    page.wait_for_function("document.querySelector('#run-status').innerText.includes('Made version 7')", timeout=10_000)
    assert "challenger beats the champion" in page.inner_text("#run-log")
    assert page.evaluate("window.__same_page") is True
    assert log.console_errors == [] and log.failed == [] and log.refused == []
