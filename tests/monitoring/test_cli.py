"""``iotsphere monitor metrics|report``: the monitor on the command line, the report written as one HTML file."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from cloud.config import CloudConfig
from cloud.storage import from_iso, iso
from iotsphere.cli import main
from tests.monitoring.conftest import Fleet


def _run(config: CloudConfig, *args: str) -> Result:
    return CliRunner().invoke(main, ["monitor", *args, "--data-dir", str(config.data_dir)])


def test_metrics_prints_the_cells_and_can_store_them(failure_fleet: Fleet, config: CloudConfig):
    printed = _run(
        config,
        "metrics",
        "component_failure",
        "--start",
        "2026-03-01",
        "--end",
        "2026-03-03",
        "--window",
        "1d",
        "--group-by",
        "arm",
        "--store",
    )

    assert printed.exit_code == 0, printed.output
    result = json.loads(printed.output)
    assert [(c["arm"], c["window_start"][:10], c["predictions"]) for c in result["cells"]] == [
        ("champion", "2026-03-01", 160),
        ("champion", "2026-03-02", 160),
        ("challenger", "2026-03-01", 160),
        ("challenger", "2026-03-02", 160),
    ]
    stored = failure_fleet.db.execute("SELECT count(DISTINCT arm || at) FROM metric_points WHERE source = 'computed'")
    assert stored.fetchone()[0] == 4


def test_report_writes_one_html_file_that_needs_no_network(failure_fleet: Fleet, config: CloudConfig, tmp_path: Path):
    target = tmp_path / "report.html"

    written = _run(config, "report", "--period", "2026-03-01..2026-03-02", "--html", str(target))

    assert written.exit_code == 0, written.output
    assert written.output.startswith(f"wrote {target} (component_failure;")
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and page.count('class="time-series"') >= 4
    assert not re.search(r"https?://", re.sub(r"/\*!.*?\*/", "", page))  # but uPlot's licence comment
    as_json = json.loads(_run(config, "report", "--period", "2026-03-01..2026-03-02").output)
    assert [m["model_name"] for m in as_json["models"]] == ["component_failure"]


def test_errors_are_clear(failure_fleet: Fleet, config: CloudConfig, tmp_path: Path):
    unknown = _run(config, "metrics", "nope")
    assert unknown.exit_code == 1 and "unknown model 'nope'" in unknown.output
    period = _run(config, "report", "--period", "lately")
    assert period.exit_code == 1 and "time_period must be one of" in period.output
    half = _run(config, "metrics", "component_failure", "--start", "2026-03-01")
    assert half.exit_code == 1 and "--start and --end together" in half.output
    unwritable = _run(config, "report", "--html", str(tmp_path / "missing" / "report.html"))
    assert unwritable.exit_code == 1 and "cannot write" in unwritable.output


def test_report_as_of_the_data_finds_predictions_a_window_ending_now_misses(failure_fleet: Fleet, config: CloudConfig):
    """Simulated predictions lie away from the wall clock: last week up to now holds none of them, and the report
    says where they are; ``--as-of data`` ends the week just after the newest one."""
    newest = failure_fleet.db.execute("SELECT max(made_at) FROM predictions").fetchone()[0]

    now = _run(config, "report", "--period", "last_week")
    of_data = _run(config, "report", "--period", "last_week", "--as-of", "data")

    assert now.exit_code == 0, now.output
    assert json.loads(now.stdout)["models"] == []
    assert "no predictions in this window, but the stored predictions" in now.stderr
    assert f"to {newest}) lie before it: --as-of data looks there" in now.stderr
    report = json.loads(of_data.stdout)
    assert report["end"] == iso(from_iso(newest) + timedelta(microseconds=1)) and of_data.stderr == ""
    assert [m["model_name"] for m in report["models"]] == ["component_failure"]


def test_metrics_as_of_a_time_sets_the_period_end(failure_fleet: Fleet, config: CloudConfig):
    printed = _run(config, "metrics", "component_failure", "--period", "last_day", "--as-of", "2026-03-02T00:00:00Z")

    assert printed.exit_code == 0, printed.output
    result = json.loads(printed.stdout)
    assert (result["start"], result["end"]) == ("2026-03-01T00:00:00.000000Z", "2026-03-02T00:00:00.000000Z")
    assert sum(cell["predictions"] for cell in result["cells"]) > 0
