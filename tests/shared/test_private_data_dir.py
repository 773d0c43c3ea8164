"""Everything under the cloud's and a gateway's data folder is created 0600 (files) / 0700 (folders).

The cloud's folder is made by the real CLI in its own processes, started with the common umask 022 (what a
service manager or a shell gives them), and looked at file by file afterwards.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from cloud.config import PASSPHRASE_ENV
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig

PASSPHRASE = "correct horse battery staple"


def _loose(root: Path) -> list[str]:
    """Every path under ``root`` (itself included) that group or others may use, with its mode."""
    paths = [root, *root.rglob("*")]
    return [
        f"{path.relative_to(root.parent)} {stat.filemode(path.lstat().st_mode)}"
        for path in paths
        if not path.is_symlink() and path.lstat().st_mode & 0o077
    ]


def _iotsphere(*args: str) -> None:
    env = {**os.environ, PASSPHRASE_ENV: PASSPHRASE, "IOTSPHERE_KEY_KDF_ROUNDS": "2000"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "iotsphere"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_cloud_data_folder_made_by_the_cli_is_private(tmp_path: Path) -> None:
    data = tmp_path / "cloud"
    (data / "artifacts").mkdir(parents=True, mode=0o755)  # left by an earlier version, with loose modes
    (data / "artifacts" / "model.onnx").write_bytes(b"onnx")
    (data / "artifacts" / "model.onnx").chmod(0o644)
    (data / "artifacts").chmod(0o755)
    data.chmod(0o755)

    _iotsphere("cloud", "init", "--data-dir", str(data))
    _iotsphere("admin", "create-key", "--role", "admin", "--name", "ops", "--data-dir", str(data))
    previous = os.umask(0o022)  # a reader elsewhere, with the usual umask, that makes SQLite add -wal and -shm
    try:
        reader = sqlite3.connect(data / "iotsphere.db")
        reader.execute("SELECT count(*) FROM audit_log").fetchone()
        assert {"iotsphere.db-wal", "iotsphere.db-shm"} <= {path.name for path in data.iterdir()}
        loose = _loose(data)
        reader.close()
    finally:
        os.umask(previous)

    names = {path.relative_to(data).as_posix() for path in data.rglob("*")}
    assert {"keys/audit.p12", "keys/director.p12", "tuf/metadata/root.json", "iotsphere.db"} <= names
    assert loose == []


def test_a_gateway_data_folder_is_private(tmp_path: Path) -> None:
    data = tmp_path / "gw"
    data.mkdir(mode=0o755)
    (data / "notes-from-before.txt").write_text("left by an earlier version")
    (data / "notes-from-before.txt").chmod(0o644)
    data.chmod(0o755)
    previous = os.umask(0o022)
    try:
        agent = EdgeAgent(AgentConfig(gateway_id="gw-1", data_dir=data, local_api_port=0))
        agent.outbox.append("t", b"{}", "m-1", "outcomes")
        agent.stop()
    finally:
        os.umask(previous)

    assert {"outbox.sqlite3", "devices.sqlite3", "agent.sqlite3", "models"} <= {p.name for p in data.iterdir()}
    assert _loose(data) == []
