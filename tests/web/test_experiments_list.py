"""The Experiments list over HTTP: newest first, a page at a time by (created_at, id), so no experiment is shown
twice or skipped when several were planned at the same instant."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from cloud.api.roles import Role
from cloud.experiments.store import ExperimentStore
from cloud.storage import open_database
from cloud.web.pages import experiments as experiments_page
from tests.api.conftest import served_cloud
from tests.web.conftest import sign_in


def _plan(config, planned: list[tuple[str, int]]) -> None:
    """Experiments (id, the day they were planned) through the store the API uses."""
    db = open_database(config.database_path)
    try:
        for experiment_id, day in planned:
            store = ExperimentStore(db, clock=lambda day=day: datetime(2026, 12, day, tzinfo=UTC))
            versions = {"champion_version": "1", "challenger_version": "2"}
            row = {"experiment_id": experiment_id, "model_name": f"m-{experiment_id}", "mode": "split", **versions}
            row |= {"challenger_percent": 10, "metric": "error_rate"}
            store.create(row, actor="tests", reason="planned")
    finally:
        db.conn.close()


def _listed(page: str) -> list[str]:
    return re.findall(r'<a class="mono" href="/experiments/([^"]+)">', page)


def test_experiments_are_listed_newest_first_a_page_at_a_time(config, monkeypatch) -> None:
    _plan(config, [("exp-a", 1), ("exp-b", 2), ("exp-d", 2), ("exp-c", 3), ("exp-e", 2)])
    monkeypatch.setattr(experiments_page, "PAGE", 2)
    with served_cloud(config) as cloud, sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
        pages, url = [], "/experiments"
        while url:
            page = viewer.get(url)
            assert page.status_code == 200
            pages.append(_listed(page.text))
            older = re.search(r'href="(/experiments\?before=[^"]+)">Older', page.text)
            url = older.group(1).replace("&amp;", "&") if older else ""
        assert pages == [["exp-c", "exp-e"], ["exp-d", "exp-b"], ["exp-a"]]
        assert (
            'href="/experiments">Newest' in viewer.get("/experiments?before=2026-12-02T00:00:00.000000Z%7Cexp-d").text
        )
        refused = viewer.get("/experiments", params={"before": "exp-d"})
        assert refused.status_code == 400 and "not a position in the list" in refused.text
