"""Signing commands record too: ``cloud release``, ``models promote`` and ``admin rotate-key`` on a real TUF repo."""

from __future__ import annotations

import getpass
import json

from click.testing import CliRunner, Result

from cloud.audit import AuditLog
from cloud.config import PASSPHRASE_ENV, CloudConfig
from cloud.storage import open_database
from iotsphere.cli import main
from tests.releases.conftest import PASSPHRASE, artifacts, config, initialized, onnx_models  # noqa: F401  (fixtures)


def _run(cloud: CloudConfig, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--data-dir", str(cloud.data_dir)], env={PASSPHRASE_ENV: PASSPHRASE})


def test_release_promote_and_rotate_are_recorded_without_the_passphrase(initialized, artifacts) -> None:  # noqa: F811
    released = _run(initialized, "cloud", "release", str(artifacts(version="1").directory))
    promoted = _run(initialized, "models", "promote", "component_failure", "1", "--reason", "first model")
    rotated = _run(initialized, "admin", "rotate-key", "targets")

    assert [r.exit_code for r in (released, promoted, rotated)] == [0, 0, 0], [released.output, promoted.output]
    db = open_database(initialized.database_path)
    entries = AuditLog(db).entries()
    result = AuditLog(db).verify()
    db.conn.close()
    assert [(e.actor, e.action, e.target) for e in entries] == [
        (f"cli:{getpass.getuser()}", "cloud.release", "component_failure/1"),
        (f"cli:{getpass.getuser()}", "cloud.direct", "component_failure"),  # the fleet, with no gateway yet
        (f"cli:{getpass.getuser()}", "models.promote", "component_failure"),
        (f"cli:{getpass.getuser()}", "admin.rotate-key", "targets"),
    ]
    assert (entries[0].details["already_published"], entries[0].details["targets_version"]) == (False, 2)
    assert entries[1].details == {"version": "1", "gateway_ids": None, "directed": 0, "not_directed": 0}
    assert (entries[2].details["to_version"], entries[2].details["history_id"]) == ("1", 1)  # the reason: history
    assert entries[3].details["keyid"] in rotated.output
    assert result.ok and result.checked == 4
    assert PASSPHRASE not in json.dumps([e.details for e in entries])
