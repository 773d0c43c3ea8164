"""The rollouts pages on a real cloud (versions 1 and 2 signed into TUF, version 1 on ten gateways): over HTTP, roles,
CSRF, the service's refusals as pages and an operator's halt, resume and cancel; in Debian's Chromium, an operator
starts a rollout from the form and watches its canary move as gateways report, without reloading, then rolls it
back and the signed documents put every gateway back on version 1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.api.roles import Role
from cloud.config import PASSPHRASE_ENV, CloudConfig
from cloud.releases import keystore
from cloud.storage import open_database
from cloud.web.auth import CSRF_FIELD
from tests.api.conftest import ServedCloud, auth, served_cloud
from tests.deployments.conftest import Fleet
from tests.releases.conftest import PASSPHRASE, clear_retained, onnx_models  # noqa: F401 (fixture)
from tests.rollouts.conftest import GATEWAYS, NAME, Cloud, released_config
from tests.web.conftest import SCREENSHOTS, BrowserLog, csrf_of, offline_page, serious_accessibility_violations, sign_in

pytestmark = pytest.mark.mqtt

START = {"model_name": NAME, "version": "2", "reason": "beats v1", "percentages": [20, 100]}


@pytest.fixture
def released(tmp_path: Path, onnx_models: dict[int, bytes], monkeypatch) -> Iterator[CloudConfig]:  # noqa: F811
    config = released_config(tmp_path, onnx_models)
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    yield config
    clear_retained(config, GATEWAYS)


@pytest.fixture
def served(released: CloudConfig) -> Iterator[ServedCloud]:
    with served_cloud(released) as cloud:
        yield cloud


@pytest.fixture
def edge(released: CloudConfig) -> Iterator[Cloud]:
    """The gateways' side: their events stored as ingest stores them, on a connection of their own."""
    db = open_database(released.database_path)
    yield Cloud(released, db, None, Fleet(released, db, keystore.director_key(released.keys_dir, PASSPHRASE)))
    db.conn.close()


def _started(served: ServedCloud) -> dict:
    answer = served.http.post("/api/rollouts", json=START, headers=auth(served.tokens[Role.OPERATOR]))
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_viewer_reads_rollouts_but_sees_no_control_and_cannot_post(served: ServedCloud) -> None:
    rollout_id = _started(served)["rollout_id"]
    with sign_in(served.base_url, served.tokens[Role.VIEWER]) as viewer:
        listed = viewer.get("/rollouts")
        assert listed.status_code == 200 and f'href="/rollouts/{rollout_id}"' in listed.text
        assert "Start a rollout" not in listed.text
        page = viewer.get(f"/rollouts/{rollout_id}")
        assert page.status_code == 200 and "beats v1" in page.text and "Halt" not in page.text
        assert 'hx-trigger="every' in page.text  # a live rollout's page polls its progress
        assert viewer.get("/rollouts/new").status_code == 403
        token = csrf_of(viewer)
        for path in (f"/rollouts/{rollout_id}/halt", f"/rollouts/{rollout_id}/cancel"):
            forged = viewer.post(path, data={"reason": "x", CSRF_FIELD: token})
            assert forged.status_code == 403 and "needs the operator role" in forged.text, path
        forged_start = viewer.post("/rollouts", data={**_form(), CSRF_FIELD: token})
        assert forged_start.status_code == 403
        assert viewer.get("/rollouts/999").status_code == 404
    read = served.http.get(f"/api/rollouts/{rollout_id}", headers=auth(served.tokens[Role.VIEWER])).json()
    assert read["status"] == "running"


def _form(**changes: str) -> dict[str, str]:
    return {
        "model_name": NAME,
        "version": "2",
        "reason": "beats v1",
        "percentages": "20, 100",
        "canary_max_failure_share": "0",
        "max_failure_share": "0.05",
        "stage_deadline_s": "",
    } | changes


def test_an_operator_halts_resumes_and_cancels_and_every_change_needs_the_csrf_token(served: ServedCloud) -> None:
    rollout_id = _started(served)["rollout_id"]
    with sign_in(served.base_url, served.tokens[Role.OPERATOR]) as operator:
        for sent in ({}, {CSRF_FIELD: "wrong"}):
            refused = operator.post(f"/rollouts/{rollout_id}/halt", data={"reason": "x"} | sent)
            assert refused.status_code == 403 and "CSRF" in refused.text
        token = csrf_of(operator)
        page = operator.get(f"/rollouts/{rollout_id}").text
        assert "Halt" in page and "Resume" not in page
        for action, reason in (("halt", "freeze"), ("resume", "thaw"), ("cancel", "wrong week")):
            done = operator.post(f"/rollouts/{rollout_id}/{action}", data={"reason": reason, CSRF_FIELD: token})
            assert done.status_code == 303 and done.headers["location"] == f"/rollouts/{rollout_id}", done.text
        again = operator.post(f"/rollouts/{rollout_id}/halt", data={"reason": "x", CSRF_FIELD: token})
        assert again.status_code == 409 and "only a running rollout" in again.text
        ended = operator.get(f"/rollouts/{rollout_id}").text
        assert 'hx-trigger="every' not in ended and "Halt" not in ended  # nothing left to watch or do

        refused_plan = operator.post("/rollouts", data={**_form(percentages="50, 20"), CSRF_FIELD: token})
        assert refused_plan.status_code == 409 and "must rise strictly" in refused_plan.text
        not_numbers = operator.post("/rollouts", data={**_form(percentages="ten"), CSRF_FIELD: token})
        assert not_numbers.status_code == 400 and "stages must be numbers" in not_numbers.text
        too_wide = operator.post("/rollouts", data={**_form(percentages="20, 150"), CSRF_FIELD: token})
        assert too_wide.status_code == 400 and "percentages" in too_wide.text
    decisions = served.http.get(f"/api/rollouts/{rollout_id}", headers=auth(served.tokens[Role.VIEWER])).json()
    assert [d["decision"] for d in decisions["decisions"]][-3:] == ["halted", "resumed", "cancelled"]
    assert decisions["decisions"][-1]["actor"] == f"key:{served.tokens[Role.OPERATOR].split('_')[1]}"


def test_starting_without_the_passphrase_shows_the_services_503(served: ServedCloud, monkeypatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV)
    with sign_in(served.base_url, served.tokens[Role.OPERATOR]) as operator:
        answer = operator.post("/rollouts", data={**_form(), CSRF_FIELD: csrf_of(operator)})
        assert answer.status_code == 503 and "text/html" in answer.headers["content-type"]
        assert PASSPHRASE_ENV in answer.text
    assert served.http.get("/api/rollouts", headers=auth(served.tokens[Role.VIEWER])).json() == []


def test_an_operator_starts_watches_live_and_rolls_back_from_the_pages(served: ServedCloud, edge: Cloud, browser):
    log = BrowserLog()
    page = offline_page(browser, served.base_url, log)
    page.goto(f"{served.base_url}/login?next=/rollouts")
    page.fill("#api_key", served.tokens[Role.OPERATOR])
    page.click("button[type=submit]")
    page.wait_for_url(f"{served.base_url}/rollouts")
    page.click("text=Start a rollout")
    assert serious_accessibility_violations(page) == []
    page.select_option("#model_name", NAME)
    page.fill("#version", "2")
    page.fill("#percentages", "20, 100")
    page.fill("#reason", "beats version 1 on the held-out month")
    page.click("button:has-text('Start the rollout')")
    page.wait_for_url(f"{served.base_url}/rollouts/*")
    rollout_id = int(page.url.rsplit("/", 1)[1])
    canary = [
        g["gateway_id"]
        for g in served.http.get(f"/api/rollouts/{rollout_id}", headers=_viewer(served)).json()["stages"][0]["gateways"]
    ]
    assert len(canary) == 2 and all(edge.version_of(g)[0] == "2" for g in canary)
    assert page.locator("#stage-0 .committed").inner_text() == "0 of 2"
    page.evaluate("window.__same_page = true")  # gone if the page reloads

    edge.commit(canary[0])
    page.wait_for_function("document.querySelector('#stage-0 .committed').innerText === '1 of 2'")
    edge.reject(canary[1], rule="onnx.load", detail="operator not allowed")
    page.wait_for_function(f"document.querySelector('#failed-gateways').innerText.includes('{canary[1]}')")
    failed = page.locator("#failed-gateways").inner_text()
    assert "rejected" in failed and "[onnx.load] operator not allowed" in failed
    assert page.evaluate("window.__same_page") is True
    assert serious_accessibility_violations(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "rollout.png"), full_page=True)

    page.fill("#act-reason", "the canary rejected it")
    page.click("button:has-text('Roll back')")
    page.wait_for_url(f"{served.base_url}/rollouts/{rollout_id}")
    assert "rolled_back" in page.locator("#rollout-progress").inner_text()
    assert all(edge.version_of(g)[0] == "1" for g in canary)
    decisions = served.http.get(f"/api/rollouts/{rollout_id}", headers=_viewer(served)).json()["decisions"]
    assert [d["decision"] for d in decisions] == ["started", "stage_started", "rolled_back"]
    page.goto(f"{served.base_url}/rollouts")
    assert serious_accessibility_violations(page) == []
    assert log.console_errors == [] and log.failed == [] and log.refused == []


def _viewer(served: ServedCloud) -> dict[str, str]:
    return auth(served.tokens[Role.VIEWER])
