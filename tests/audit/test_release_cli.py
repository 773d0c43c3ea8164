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
    first = _run(initialized, "cloud", "release", str(artifacts(version="1").directory))
    second = _run(initialized, "cloud", "release", str(artifacts(version="2", seed=2).directory))
    promoted = _run(initialized, "models", "promote", "component_failure", "2", "--reason", "beats v1")
    rotated = _run(initialized, "admin", "rotate-key", "targets")

    outputs = [r.output for r in (first, second, promoted, rotated)]
    assert [r.exit_code for r in (first, second, promoted, rotated)] == [0, 0, 0, 0], outputs
    db = open_database(initialized.database_url)
    entries = AuditLog(db).entries()
    result = AuditLog(db).verify()
    db.close()
    cli = f"cli:{getpass.getuser()}"
    assert [(e.actor, e.action, e.target) for e in entries] == [
        (cli, "cloud.release", "component_failure/1"),
        (cli, "models.promote", "component_failure"),  # a first release becomes production (the fleet's, no gateway)
        (cli, "cloud.release", "component_failure/2"),  # a later one is only signed
        (cli, "models.promote", "component_failure"),
        (cli, "admin.rotate-key", "targets"),
    ]
    assert (entries[0].details["already_published"], entries[0].details["targets_version"]) == (False, 2)
    assert (entries[1].details["from_version"], entries[1].details["to_version"]) == (None, "1")
    assert entries[1].details["directed"] == 0
    assert (entries[3].details["from_version"], entries[3].details["to_version"]) == ("1", "2")
    assert entries[4].details["keyid"] in rotated.output
    assert result.ok and result.checked == 5
    assert PASSPHRASE not in json.dumps([e.details for e in entries])
