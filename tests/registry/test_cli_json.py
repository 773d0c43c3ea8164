"""``iotsphere models show`` prints JSON a strict parser reads: a metric that is NaN (e.g. ROC AUC of a holdout with
one class) or infinite is ``null``, never the bare ``NaN`` that ``json.dumps`` writes by default."""

from __future__ import annotations

import json

import pytest
import sqlite_utils
from click.testing import CliRunner

from cloud.cli_output import to_json
from cloud.config import CloudConfig
from iotsphere.cli import main
from tests.api import seed
from tests.api.conftest import config, db  # noqa: F401  (fixtures)
from tests.rows import update_rows


def _strict(text: str) -> object:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_models_show_prints_non_finite_metrics_as_null(
    config: CloudConfig,  # noqa: F811
    db: sqlite_utils.Database,  # noqa: F811
) -> None:
    seed.model_version(db, "component_failure", "1", "released", days=0)
    metrics = {"roc_auc": float("nan"), "brier": float("inf"), "holdout": {"rows": 10, "pr_auc": float("-inf")}}
    update_rows(
        db, "models", {"model_name": "component_failure", "model_version": "1"}, {"metrics_json": json.dumps(metrics)}
    )

    shown = CliRunner().invoke(main, ["models", "show", "component_failure", "1", "--data-dir", str(config.data_dir)])

    assert shown.exit_code == 0, shown.output
    assert _strict(shown.output)["lineage"]["metrics"] == {
        "roc_auc": None,
        "brier": None,
        "holdout": {"rows": 10, "pr_auc": None},
    }


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_to_json_turns_every_non_finite_number_into_null_wherever_it_is(value: float) -> None:
    nested = {"a": [value, (1.5, value)], "b": {"c": value}}

    assert _strict(to_json(nested)) == {"a": [None, [1.5, None]], "b": {"c": None}}
