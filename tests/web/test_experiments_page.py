"""The experiments pages on a real cloud (versions 1 and 2 signed into TUF, version 1 in production on two gateways,
predictions and outcomes stored by ingest's own write path): over HTTP, roles, CSRF and the service's refusals as
pages; in Debian's Chromium, an operator starts an experiment, watches the always-valid p-value and confidence
sequence drawn over time, and concludes it, which promotes the winning challenger through the registry."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from cloud.api.roles import Role
from cloud.config import PASSPHRASE_ENV, CloudConfig
from cloud.web.auth import CSRF_FIELD
from tests.api.conftest import ServedCloud, served_cloud
from tests.experiments.conftest import NAME, Lab, lab, production  # noqa: F401 (fixtures)
from tests.registry.test_http import released  # noqa: F401 (fixture)
from tests.releases.conftest import onnx_models  # noqa: F401 (fixture)
from tests.web.conftest import SCREENSHOTS, BrowserLog, csrf_of, offline_page, serious_accessibility_violations, sign_in

pytestmark = pytest.mark.mqtt

#: the challenger errs much less: the sequential test finds it within a few hundred heaters
DIFFERENCE = {"champion": 0.35, "challenger": 0.20}


@pytest.fixture
def served(production: CloudConfig) -> Iterator[ServedCloud]:  # noqa: F811
    with served_cloud(production) as cloud:
        yield cloud


def _draft(lab: Lab) -> str:  # noqa: F811
    return lab.service.create(NAME, "2", actor="tests", mode="split", challenger_percent=50, reason="new anode")[
        "experiment_id"
    ]


def test_a_viewer_watches_but_sees_no_control_and_cannot_post(served: ServedCloud, lab: Lab) -> None:  # noqa: F811
    experiment_id = _draft(lab)
    with sign_in(served.base_url, served.tokens[Role.VIEWER]) as viewer:
        listed = viewer.get("/experiments")
        assert listed.status_code == 200 and f'href="/experiments/{experiment_id}"' in listed.text
        page = viewer.get(f"/experiments/{experiment_id}")
        assert page.status_code == 200 and "new anode" in page.text and "<form" not in page.text.split("</header>")[1]
        token = csrf_of(viewer)
        for action in ("start", "stop", "conclude"):
            forged = viewer.post(f"/experiments/{experiment_id}/{action}", data={"reason": "x", CSRF_FIELD: token})
            assert forged.status_code == 403 and "needs the operator role" in forged.text, action
        assert viewer.get("/experiments/exp-missing").status_code == 404
    assert lab.service.store.get(experiment_id)["status"] == "draft"


def test_operator_changes_need_the_csrf_token_a_reason_to_stop_and_enough_data_to_conclude(
    served: ServedCloud,
    lab: Lab,  # noqa: F811
) -> None:
    experiment_id = _draft(lab)
    with sign_in(served.base_url, served.tokens[Role.OPERATOR]) as operator:
        for sent in ({}, {CSRF_FIELD: "wrong"}):
            refused = operator.post(f"/experiments/{experiment_id}/start", data=sent)
            assert refused.status_code == 403 and "CSRF" in refused.text
        token = csrf_of(operator)
        started = operator.post(f"/experiments/{experiment_id}/start", data={CSRF_FIELD: token})
        assert started.status_code == 303 and started.headers["location"] == f"/experiments/{experiment_id}"
        running = operator.get(f"/experiments/{experiment_id}").text
        assert "Stop: take the challenger off" in running and "Not started" not in running

        early = operator.post(f"/experiments/{experiment_id}/conclude", data={CSRF_FIELD: token})
        assert early.status_code == 409 and "not enough data" in early.text
        no_reason = operator.post(f"/experiments/{experiment_id}/stop", data={"reason": "", CSRF_FIELD: token})
        assert no_reason.status_code == 400 and "reason" in no_reason.text
        stopped = operator.post(f"/experiments/{experiment_id}/stop", data={"reason": "done", CSRF_FIELD: token})
        assert stopped.status_code == 303
        forced = operator.post(
            f"/experiments/{experiment_id}/conclude", data={"reason": "season over", "force": "true", CSRF_FIELD: token}
        )
        assert forced.status_code == 303
    experiment = lab.service.store.get(experiment_id)
    assert (experiment["status"], experiment["decision"]) == ("concluded", "inconclusive")
    log = lab.service.store.decisions(experiment_id)
    assert [d["action"] for d in log] == ["create", "start", "conclude_refused", "stop", "conclude"]
    assert log[-1]["actor"] == f"key:{served.tokens[Role.OPERATOR].split('_')[1]}"


def test_starting_without_the_passphrase_shows_the_services_503(served: ServedCloud, lab: Lab, monkeypatch) -> None:  # noqa: F811
    experiment_id = _draft(lab)
    monkeypatch.delenv(PASSPHRASE_ENV)
    with sign_in(served.base_url, served.tokens[Role.OPERATOR]) as operator:
        answer = operator.post(f"/experiments/{experiment_id}/start", data={CSRF_FIELD: csrf_of(operator)})
        assert answer.status_code == 503 and PASSPHRASE_ENV in answer.text
    assert lab.service.store.get(experiment_id)["status"] == "draft"


def test_an_operator_starts_watches_the_test_over_time_and_concludes(served: ServedCloud, lab: Lab, browser) -> None:  # noqa: F811
    experiment_id = _draft(lab)
    log = BrowserLog()
    page = offline_page(browser, served.base_url, log)
    page.goto(f"{served.base_url}/login?next=/experiments")
    page.fill("#api_key", served.tokens[Role.OPERATOR])
    page.click("button[type=submit]")
    page.wait_for_url(f"{served.base_url}/experiments")
    page.click(f"a[href='/experiments/{experiment_id}']")
    page.fill("#start-reason", "retrained on the new anode type")
    page.click("button:has-text('Start')")
    page.wait_for_url(f"{served.base_url}/experiments/{experiment_id}")
    assert "running" in page.locator("main p").first.inner_text()

    for seed in range(3):  # three waves of heaters, a second apart: the chart has a point after each
        lab.feed(lab.service.store.get(experiment_id), devices=400, error_rate=DIFFERENCE, seed=seed)
        time.sleep(1.2)
    page.reload()
    page.wait_for_selector("figure.chart canvas")
    assert page.locator("figure.chart canvas").count() >= 2  # both charts drawn by uPlot
    p_values = json.loads(page.locator("script.time-series").first.text_content())["series"][0]["values"]
    assert len(set(p_values)) >= 3 and p_values[-1] < 0.05 and p_values[0] > p_values[-1]
    arms = page.locator("#arms").inner_text()
    assert "champion" in arms and "challenger" in arms
    assert "significant" in page.locator("#sequential").inner_text()
    assert serious_accessibility_violations(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "experiment.png"), full_page=True)

    page.click("button:has-text('Conclude')")
    page.wait_for_url(f"{served.base_url}/experiments/{experiment_id}")
    assert "decided: challenger" in page.locator("main p").first.inner_text()
    assert lab.registry.get_active_model(NAME)["model_version"] == "2"
    assert f"won experiment {experiment_id}" == lab.registry.history(NAME)[0]["reason"]
    page.goto(f"{served.base_url}/experiments")
    assert serious_accessibility_violations(page) == []
    assert log.console_errors == [] and log.failed == [] and log.refused == []
