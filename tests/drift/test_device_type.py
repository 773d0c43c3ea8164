"""A drift check of a device type nobody knows is refused (CLI exit 1, API 400) and records nothing, naming the
device types that exist; a known one is checked as before."""

from __future__ import annotations

import httpx
import sqlite_utils
from click.testing import CliRunner

from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.monitoring.drift import drift_history
from iotsphere.cli import main
from tests.api.conftest import auth, base_url, config, db, http, tokens  # noqa: F401  (fixtures)
from tests.drift.fleet import TYPES, feature_values, register, store_features


def _fleet(db: sqlite_utils.Database) -> None:  # noqa: F811
    register(db, feature_values(4_000, seed=1))
    store_features(db, feature_values(400, seed=2))


def test_the_cli_refuses_an_unknown_device_type_and_lists_the_known_ones(
    config: CloudConfig,  # noqa: F811
    db: sqlite_utils.Database,  # noqa: F811
) -> None:
    _fleet(db)
    args = ["drift", "check", "component_failure", "--data-dir", str(config.data_dir)]

    refused = CliRunner().invoke(main, [*args, "--device-type", "nosuch"])
    known = CliRunner().invoke(main, [*args, "--device-type", TYPES[0]])

    assert refused.exit_code == 1, refused.output
    assert "unknown device type 'nosuch'" in refused.output
    assert f"known device types: {', '.join(sorted(TYPES))}" in refused.output
    assert known.exit_code == 0, known.output
    [entry] = drift_history(db, "component_failure", 10)
    assert entry["device_type"] == TYPES[0]


def test_the_api_refuses_an_unknown_device_type_with_400(
    db: sqlite_utils.Database,  # noqa: F811
    http: httpx.Client,  # noqa: F811
    tokens: dict[Role, str],  # noqa: F811
) -> None:
    _fleet(db)
    path = "/api/monitoring/drift/component_failure"

    looked = http.get(path, params={"device_type": "nosuch"}, headers=auth(tokens[Role.VIEWER]))
    checked = http.post(f"{path}/check", json={"device_type": "nosuch"}, headers=auth(tokens[Role.OPERATOR]))

    assert (looked.status_code, checked.status_code) == (400, 400)
    assert "known device types" in looked.json()["detail"] and TYPES[1] in checked.json()["detail"]
    assert drift_history(db, "component_failure", 10) == []
