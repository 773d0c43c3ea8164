"""Comparing two versions on the Models page: each version's held-out evaluation from the registry beside its field
metrics from outcomes as the monitoring service computes them, with the difference; a bad choice is a clear 4xx
page. A real SQLite store: two registered versions, predictions of both, outcomes for version 1 only."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.registry import MLModelRegistry
from cloud.storage import iso, open_database
from tests.api.conftest import ServedCloud, auth, served_cloud
from tests.web.conftest import (
    SCREENSHOTS,
    BrowserLog,
    offline_page,
    serious_accessibility_violations,
    sign_in,
    store_labelled,
)

MODEL = "component_failure"
HOLDOUT = {
    "1": {"score_name": "mean_pr_auc", "score": 0.41, "rows": 900, "mean_roc_auc": 0.71, "mean_pr_auc": 0.41},
    "2": {"score_name": "mean_pr_auc", "score": 0.47, "rows": 950, "mean_roc_auc": 0.69, "mean_pr_auc": 0.47},
}
PER_CELL = 24


def _register(db, artifacts: Path) -> None:
    registry = MLModelRegistry(db)
    for version, holdout in HOLDOUT.items():
        metadata = {
            "prediction_type": MODEL,
            "feature_set_version": "1",
            "model_sha256": version * 64,
            "metrics": {"score": holdout["score"], "holdout": holdout},
        }
        registry.register_model(MODEL, version, artifacts, metadata)
    registry.record_evaluation(MODEL, "2", True, {"reason": "beats version 1 by 0.06"})
    registry.register_model("usage_pattern", "7", artifacts, metadata | {"prediction_type": "usage_pattern"})


def _predict(db, start: datetime) -> None:
    """Version 1 on two device types, every prediction labelled (half linked through the feedback service, half
    by a device outcome alone); version 2 on one device type, recent enough that no horizon has passed, unlabelled."""
    made, device_outcomes, linked = [], [], []
    for version, device_type in (("1", "tank-50"), ("1", "heat-pump-80"), ("2", "tank-50")):
        for i in range(PER_CELL):
            at = start + timedelta(hours=2 * i)
            p = round((i % 10) / 10 + 0.05, 2)
            prediction_id, device = uuid.uuid4().hex, f"wh-{uuid.uuid4().hex[:8]}"
            outputs = json.dumps({"none": round(1 - p, 2), "heating_element": p})
            message = (prediction_id, "champion", device, device_type, MODEL, MODEL, version, outputs, 2.0 + i % 3)
            made.append((*message, iso(at), iso(at), "gw-1", uuid.uuid4().hex))
            if version == "2":
                continue
            found = {"component": "heating_element", "result": "failed" if (p > 0.5) != (i % 7 == 0) else "ok"}
            observed = at + timedelta(hours=20)
            if i % 2:
                device_outcomes.append(
                    (uuid.uuid4().hex, device, "technician", iso(observed), None, found["component"])
                    + (found["result"], None, None, None, "gw-1", iso(observed))
                )
            else:
                linked.append((prediction_id, found | {"observed_at": observed}))
    store_labelled(db, made, device_outcomes, linked)


@pytest.fixture
def cloud(config: CloudConfig, tmp_path: Path) -> Iterator[ServedCloud]:
    db = open_database(config.database_url)
    try:
        _register(db, tmp_path)
        _predict(db, datetime.now(UTC) - timedelta(days=4))
    finally:
        db.close()
    with served_cloud(config) as served:
        yield served


def _cells(page: str, table_id: str, figure: str) -> list[str]:
    """The cells after a figure's row header in one table, as text."""
    table = page[page.index(f'id="{table_id}"') :]
    table = table[: table.index("</table>")]
    row = re.search(rf'<th scope="row"[^>]*>{re.escape(figure)}</th>(.*?)</tr>', table, re.S)
    assert row, (table_id, figure)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]


def test_a_viewer_compares_held_out_and_field_metrics_with_their_difference(cloud: ServedCloud) -> None:
    with sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
        model_page = viewer.get(f"/models/{MODEL}").text
        assert f'action="/models/{MODEL}/compare"' in model_page and "Promote…" not in model_page

        page = viewer.get(f"/models/{MODEL}/compare", params={"a": "1", "b": "2", "component": "heating_element"})
        assert page.status_code == 200, page.text
        text = page.text
        assert "<caption>Held-out evaluation" in text and '<th scope="col">Δ</th>' in text
        assert _cells(text, "holdout", "mean_pr_auc") == ["0.410", "0.470", "+0.060 (better)"]
        assert _cells(text, "holdout", "mean_roc_auc") == ["0.710", "0.690", "-0.020 (worse)"]
        assert _cells(text, "holdout", "rows") == ["900", "950", "+50"]
        assert _cells(text, "versions", "Evaluation gate")[1] == "passed: beats version 1 by 0.06"

        figures = viewer.get(
            f"/api/monitoring/performance/{MODEL}",
            params={"time_period": "last_week", "window": "all"},
            headers=auth(cloud.tokens[Role.VIEWER]),
        ).json()
        for device_type in ("tank-50", "heat-pump-80"):
            [cell] = [c for c in figures["cells"] if (c["model_version"], c["device_type"]) == ("1", device_type)]
            found = cell["classification"]["heating_element"]
            table = f"field-{device_type}"
            assert _cells(text, table, "precision")[0] == f"{found['precision']:.3f}"
            assert _cells(text, table, "brier")[0] == f"{found['brier']:.3f}"
            assert _cells(text, table, "scored (heating_element)")[0] == str(found["n"]) == str(PER_CELL)
            assert _cells(text, table, "Label coverage")[0] == f"{PER_CELL // 2} of {PER_CELL} (50.0%)"
        assert _cells(text, "field-tank-50", "precision")[1:] == ["no field outcomes yet", "–"]
        assert _cells(text, "field-tank-50", "predictions") == [str(PER_CELL), str(PER_CELL), "+0"]
        assert _cells(text, "field-tank-50", "Label coverage")[1] == f"0 of {PER_CELL} (0.0%)"
        assert _cells(text, "field-heat-pump-80", "predictions") == [str(PER_CELL), "0", f"-{PER_CELL}"]
        assert _cells(text, "field-heat-pump-80", "recall")[1] == "no field outcomes yet"
        assert _cells(text, "field-heat-pump-80", "Label coverage")[1] == "no prediction"


def test_the_form_alone_until_two_versions_are_chosen(cloud: ServedCloud) -> None:
    with sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
        page = viewer.get(f"/models/{MODEL}/compare")
        assert page.status_code == 200
        assert 'id="compare-a"' in page.text and 'id="holdout"' not in page.text
        single = viewer.get("/models/usage_pattern/compare").text
        assert "nothing to compare it with yet" in single


@pytest.mark.parametrize(
    ("query", "status", "said"),
    [
        ({"a": "1", "b": "9"}, 404, "no model &#39;component_failure&#39; version &#39;9&#39;"),
        ({"a": "2", "b": "2"}, 400, "not version 2 twice"),
        ({"a": "1", "b": "7"}, 404, "version &#39;7&#39;"),  # usage_pattern's version
        ({"a": "1", "b": "2", "period": "sometime"}, 400, "time_period must be"),
        ({"a": "1", "b": "2", "component": "flux"}, 400, "unknown component"),
    ],
)
def test_a_bad_comparison_is_a_clear_page_not_an_error(cloud: ServedCloud, query, status: int, said: str) -> None:
    with sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
        answer = viewer.get(f"/models/{MODEL}/compare", params=query)
        assert answer.status_code == status and "text/html" in answer.headers["content-type"]
        assert said in answer.text
        assert viewer.get("/models/nothing/compare", params={"a": "1", "b": "2"}).status_code == 404


def test_the_comparison_renders_clean_and_accessibly_in_a_browser(cloud: ServedCloud, browser) -> None:
    log = BrowserLog()
    page = offline_page(browser, cloud.base_url, log, viewport={"width": 1280, "height": 900})
    page.goto(f"{cloud.base_url}/login?next=/models/{MODEL}")
    page.fill("#api_key", cloud.tokens[Role.VIEWER])
    page.click("button[type=submit]")
    page.wait_for_url(f"{cloud.base_url}/models/{MODEL}")
    page.select_option("#compare-a", "1")
    page.select_option("#compare-b", "2")
    page.click("button:has-text('Compare held-out and field metrics')")
    page.wait_for_selector("#holdout")
    assert serious_accessibility_violations(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "model_compare.png"), full_page=True)
    assert log.console_errors == [] and log.failed == [] and log.refused == []
