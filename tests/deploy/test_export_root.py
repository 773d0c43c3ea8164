"""``iotsphere admin export-root``: the provisioning file is the repository's latest root, byte for byte."""

from __future__ import annotations

from click.testing import CliRunner
from tuf.api.metadata import Metadata, Root

from iotsphere.cli import main


def test_export_root_writes_the_root_gateways_start_from(tmp_path, monkeypatch):
    monkeypatch.setenv("IOTSPHERE_KEY_PASSPHRASE", "a passphrase for this test")
    monkeypatch.setenv("IOTSPHERE_KEY_KDF_ROUNDS", "1000")
    data_dir, out = tmp_path / "cloud", tmp_path / "provision" / "root.json"
    runner = CliRunner()
    assert runner.invoke(main, ["cloud", "init", "--data-dir", str(data_dir)]).exit_code == 0

    exported = runner.invoke(main, ["admin", "export-root", "--data-dir", str(data_dir), "--out", str(out)])

    assert exported.exit_code == 0, exported.output
    assert out.read_bytes() == (data_dir / "tuf" / "metadata" / "root.json").read_bytes()
    assert isinstance(Metadata.from_bytes(out.read_bytes()).signed, Root)


def test_export_root_from_a_folder_without_a_cloud_says_so(tmp_path):
    exported = CliRunner().invoke(
        main, ["admin", "export-root", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "root.json")]
    )
    assert exported.exit_code == 1 and "`cloud init` never ran there" in exported.output
    assert not (tmp_path / "root.json").exists()
