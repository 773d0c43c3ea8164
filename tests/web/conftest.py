"""Fixtures for the dashboard: a signed-in HTTP client per role, and Debian's Chromium kept off every other host."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from cloud.config import CloudConfig
from cloud.data import predictions as stored_predictions
from cloud.data.connections import write_transaction
from cloud.feedback import PredictionFeedbackService
from cloud.web.auth import COOKIE, CSRF_FIELD

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
#: where the browser tests leave screenshots of the main pages (README links them)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def config(tmp_path: Path) -> CloudConfig:
    return CloudConfig(data_dir=tmp_path / "cloud")


@contextmanager
def sign_in(base_url: str, token: str) -> Iterator[httpx.Client]:
    """A client holding a dashboard session opened with ``token``."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        answer = client.post("/login", data={"api_key": token, "next": "/models"})
        assert answer.status_code == 303, answer.text
        assert COOKIE in client.cookies
        yield client


def csrf_of(client: httpx.Client) -> str:
    """The session's CSRF token, as every page's forms carry it."""
    page = client.get("/models").text
    marker = f'name="{CSRF_FIELD}" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


@dataclass
class BrowserLog:
    """What a page did that a test must see: console errors and requests that failed or left the cloud."""

    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@pytest.fixture
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "the browser tests need Debian's chromium (bash tests/ensure_system.sh installs it)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def offline_page(browser, base_url: str, log: BrowserLog, **context_options):
    """A page whose requests reach only ``base_url``: anything else is refused and recorded."""
    context = browser.new_context(**context_options)

    def only_the_cloud(route) -> None:
        if route.request.url.startswith(base_url):
            route.continue_()
        else:
            log.refused.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_cloud)
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and log.console_errors.append(message.text))
    # ERR_ABORTED is the browser cancelling a request itself (a poll in flight when the test navigates away); a
    # server's error arrives as a response (below), a refused or broken connection as another failure
    page.on(
        "requestfailed",
        lambda request: request.failure != "net::ERR_ABORTED" and log.failed.append(f"{request.failure} {request.url}"),
    )
    page.on(
        "response", lambda response: response.status >= 400 and log.failed.append(f"{response.status} {response.url}")
    )
    return page


def serious_accessibility_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    page.add_script_tag(content=AXE.read_text())
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['id']} ({v['impact']}): {json.dumps([n['target'] for n in v['nodes']])}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def store_labelled(db, made: list[tuple], device_outcomes: list[tuple], linked: list[tuple[str, dict]]) -> None:
    """Predictions and the outcomes a technician logged on the device alone, stored as ingest stores them, then the
    outcomes linked to a prediction recorded through the feedback service, as the technician's form records them."""
    with write_transaction(db) as connection:
        stored_predictions.add_predictions(connection, made)
        stored_predictions.add_outcomes(connection, device_outcomes)
    feedback = PredictionFeedbackService(db)
    for prediction_id, found in linked:
        feedback.record_prediction_outcome(prediction_id, found, "technician", actor="cli:tech")
