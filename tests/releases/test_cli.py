"""``iotsphere cloud init`` and ``iotsphere cloud release`` through the real CLI entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cloud.config import PASSPHRASE_ENV
from cloud.releases import director, keystore, tuf_repo
from cloud.storage import open_database
from iotsphere.cli import main
from tests.releases.conftest import PASSPHRASE, clear_retained


def _run(args, env=None, input=None):  # noqa: A002 - click's name
    return CliRunner().invoke(main, args, env=env or {PASSPHRASE_ENV: PASSPHRASE}, input=input)


def test_init_asks_for_the_passphrase_and_prints_key_ids_and_the_trusted_root(config):
    result = _run(
        ["cloud", "init", "--data-dir", str(config.data_dir)], env={PASSPHRASE_ENV: None}, input="s3cret\ns3cret\n"
    )
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output  # the prompt hides what is typed
    for name in keystore.KEY_NAMES:
        info = keystore.key_info(name, keystore.load_private_key(config.keys_dir, name, "s3cret"))
        assert info.keyid in result.output
    assert str(tuf_repo.trusted_root_path(config)) in result.output

    again = _run(["cloud", "init", "--data-dir", str(config.data_dir)])
    assert again.exit_code == 1 and "--force" in again.output


def test_release_before_init_says_to_run_init(config, artifacts):
    result = _run(["cloud", "release", str(artifacts().directory), "--data-dir", str(config.data_dir)])
    assert result.exit_code == 1
    assert f"iotsphere cloud init --data-dir {config.data_dir}" in result.output


@pytest.mark.mqtt
def test_release_signs_records_and_directs_the_named_gateway(initialized, artifacts):
    made = artifacts(version="1")
    db = open_database(initialized.database_path)
    db["models"].insert(  # as training registers a candidate
        {
            "model_name": "component_failure",
            "model_version": "1",
            "status": "candidate",
            "metrics_json": json.dumps({"auc": 0.9}),
            "model_sha256": made.release.model_sha256,
        }
    )
    args = ["cloud", "release", str(made.directory), "--gateway", "gw-cli", "--data-dir", str(initialized.data_dir)]
    result = _run([*args, "--mqtt", "mqtt://127.0.0.1:1883"])
    assert result.exit_code == 0, result.output
    assert "Signed component_failure version 1 into TUF" in result.output
    assert "Directed gw-cli #1 [component_failure=1]" in result.output

    row = db["models"].get(("component_failure", "1"))
    assert row["status"] == "released"
    assert row["release_target"] == "models/component_failure/1/release.json"
    assert row["model_target"] == "models/component_failure/1/model.onnx"
    assert json.loads(row["metrics_json"]) == {"auc": 0.9}
    assert director.unpublished_gateways(db) == []
    db.conn.close()

    clear_retained(initialized, ["gw-cli"])


def test_whole_fleet_release_with_no_gateway_yet_sets_the_fleet_desired_state(initialized, artifacts):
    made = artifacts(version="1")
    result = _run(["cloud", "release", str(made.directory), "--data-dir", str(initialized.data_dir)])
    assert result.exit_code == 0, result.output
    assert "No gateway known yet" in result.output
    db = open_database(initialized.database_path)
    try:
        assert director.fleet_desired(db)["component_failure"].version == "1"
    finally:
        db.conn.close()


def test_release_with_a_wrong_passphrase_fails_clearly_and_signs_nothing(initialized, artifacts):
    made = artifacts()
    result = _run(
        ["cloud", "release", str(made.directory), "--data-dir", str(initialized.data_dir)],
        env={PASSPHRASE_ENV: "wrong"},
    )
    assert result.exit_code == 1
    assert "wrong passphrase for the signing keys" in result.output
    assert set(tuf_repo.list_targets(initialized)) == {tuf_repo.DIRECTOR_KEYS_TARGET}


def test_release_with_mismatched_hashes_fails_clearly(initialized, artifacts, onnx_models):
    made = artifacts()
    (made.directory / "model.onnx").write_bytes(onnx_models[2])
    result = _run(["cloud", "release", str(made.directory), "--data-dir", str(initialized.data_dir)])
    assert result.exit_code == 1
    assert "model.onnx has sha256" in result.output
    assert set(tuf_repo.list_targets(initialized)) == {tuf_repo.DIRECTOR_KEYS_TARGET}


def test_release_of_a_folder_without_model_onnx_fails_clearly(initialized, artifacts):
    made = artifacts()
    (made.directory / "model.onnx").unlink()
    result = _run(["cloud", "release", str(made.directory), "--data-dir", str(initialized.data_dir)])
    assert result.exit_code == 1
    assert "has no model.onnx" in result.output


def test_rotate_signing_key_command(initialized):
    args = ["--data-dir", str(initialized.data_dir)]
    result = CliRunner().invoke(main, ["admin", "rotate-key", "targets", *args], env={PASSPHRASE_ENV: PASSPHRASE})
    assert result.exit_code == 0, result.output
    new_keyid = keystore.tuf_signer(initialized.keys_dir, "targets", PASSPHRASE).public_key.keyid
    assert f"New targets key {new_keyid}" in result.output
    assert "Root metadata v2" in result.output

    result = CliRunner().invoke(main, ["admin", "rotate-key", "director", *args], env={PASSPHRASE_ENV: PASSPHRASE})
    assert result.exit_code == 0, result.output
    assert "Published 0 re-signed director document(s)" in result.output

    wrong = CliRunner().invoke(main, ["admin", "rotate-key", "timestamp", *args], env={PASSPHRASE_ENV: "wrong"})
    assert wrong.exit_code == 1 and "wrong passphrase" in wrong.output


def test_release_refuses_an_invalid_gateway_id(initialized, artifacts):
    made = artifacts()
    result = _run(
        ["cloud", "release", str(made.directory), "--gateway", "a/b", "--data-dir", str(initialized.data_dir)]
    )
    assert result.exit_code == 2 and "invalid gateway id" in result.output
    assert set(tuf_repo.list_targets(initialized)) == {tuf_repo.DIRECTOR_KEYS_TARGET}


def test_without_the_passphrase_or_a_terminal_init_names_the_variable_to_set(tmp_path):
    """A script or service with no terminal: one clear line instead of a GetPassWarning and "Aborted!"."""
    env = {k: v for k, v in os.environ.items() if k != PASSPHRASE_ENV}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "iotsphere"), "cloud", "init", "--data-dir", str(tmp_path / "cloud")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert PASSPHRASE_ENV in done.stderr
    assert "GetPassWarning" not in done.stderr and "Aborted" not in done.stderr


def test_the_readme_flow_release_v1_release_v2_promote_2_roll_back(initialized, artifacts):
    """A first release is production (the registry says what gateways run); a later one waits for a promotion."""
    data = ["--data-dir", str(initialized.data_dir)]

    first = _run(["cloud", "release", str(artifacts(version="1").directory), *data])
    assert first.exit_code == 0, first.output
    assert "component_failure version 1 is production (history #1)" in first.output
    listed = _run(["models", "list", "component_failure", "--json", *data])
    assert [(v["model_version"], v["status"]) for v in json.loads(listed.output)] == [("1", "production")]
    shown = json.loads(_run(["models", "show", "component_failure", "1", *data]).output)
    assert (shown["status"], shown["production_device_type"]) == ("production", "")
    alone = _run(["models", "rollback", "component_failure", "--reason", "false alarms", *data])
    assert alone.exit_code == 1
    assert "nothing to roll back to: component_failure version 1 is the first production version" in alone.output

    second = _run(["cloud", "release", str(artifacts(version="2", seed=2).directory), *data])
    assert second.exit_code == 0, second.output
    assert "Signed component_failure version 2 into TUF" in second.output
    assert "version 1 is production: promote version 2" in second.output
    db = open_database(initialized.database_path)
    try:
        assert director.fleet_desired(db)["component_failure"].version == "1"  # nothing directed to version 2
    finally:
        db.conn.close()

    promoted = _run(["models", "promote", "component_failure", "2", "--reason", "beats v1 on the holdout", *data])
    assert promoted.exit_code == 0, promoted.output
    assert "promote: component_failure for all 1 -> 2" in promoted.output
    rolled = _run(["models", "rollback", "component_failure", "--reason", "false alarms", *data])
    assert rolled.exit_code == 0, rolled.output
    assert "rollback: component_failure for all 2 -> 1" in rolled.output
    listed = _run(["models", "list", "component_failure", "--json", *data])
    assert [(v["model_version"], v["status"]) for v in json.loads(listed.output)] == [
        ("1", "production"),
        ("2", "released"),
    ]
