"""A training run over dates that hold no feature rows fails saying so and where the rows are, rather than training
on nothing or blaming outcomes that are "still unknown" (issue 14 §2)."""

from __future__ import annotations

from datetime import datetime

from click.testing import CliRunner

from cloud.config import CloudConfig
from cloud.storage import iso
from iotsphere.cli import main


def test_a_run_over_a_window_without_rows_fails_naming_where_the_rows_are(
    config: CloudConfig, span: tuple[datetime, datetime]
) -> None:
    args = ["train", "run", "anomaly", "--from", "2020-01-01", "--to", "2020-02-01", "--now", "--no-release"]

    result = CliRunner().invoke(main, [*args, "--data-dir", str(config.data_dir)])

    assert result.exit_code == 1, result.output
    assert "failed: no feature rows in 2020-01-01T00:00:00.000000Z .. 2020-02-01T00:00:00.000000Z" in result.output
    assert f"the stored feature windows run from {iso(span[0])}" in result.output
    assert "still unknown" not in result.output
