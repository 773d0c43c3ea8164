"""One configuration object owns every environment variable: ``shared.settings.Settings``.

These tests fail when code names an ``IOTSPHERE_*`` variable that is not a setting or not in docs/configuration.md,
when the table there is not the one the object makes, and when a module other than ``shared/settings.py`` reads the
environment itself.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from cloud.config import CloudConfig, configured_actor, key_passphrase
from shared.setting_defaults import from_settings
from shared.settings import Settings, SettingsError, env_name, markdown_table, secret, settings

PROJECT = Path(__file__).resolve().parent.parent
PACKAGES = ("cloud", "shared", "edge_agent", "firmware_sim", "iotsphere")
CONFIG_MODULE = PROJECT / "shared" / "settings.py"
DOC = PROJECT / "docs" / "configuration.md"


def _sources() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (PROJECT / package).rglob("*.py"))


def test_every_variable_named_in_code_is_a_setting_and_documented() -> None:
    named = {
        name: path.relative_to(PROJECT)
        for path in _sources()
        for name in re.findall(r"\bIOTSPHERE_[A-Z0-9_]*[A-Z0-9]\b", path.read_text())
    }
    fields = {env_name(name) for name in Settings.model_fields}
    doc = DOC.read_text()

    assert {name: where for name, where in named.items() if name not in fields} == {}
    assert {name: where for name, where in named.items() if f"`{name}`" not in doc} == {}


def test_the_documented_table_is_the_one_the_settings_make() -> None:
    assert markdown_table() in DOC.read_text(), "docs/configuration.md is stale: paste `python -m shared.settings`"


def _environment_reads(tree: ast.AST) -> list[int]:
    """Lines that read a variable: ``os.getenv``, ``os.environ.get/pop/setdefault``, ``os.environ[...]``,
    ``… in os.environ`` and ``from os import environ/getenv``. Handing the whole environment to a child process
    (``os.environ.items()``) reads no setting and is allowed."""

    def os_attribute(node: ast.AST, *names: str) -> bool:
        return isinstance(node, ast.Attribute) and node.attr in names and getattr(node.value, "id", None) == "os"

    def reads(node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute) and node.attr in ("get", "pop", "setdefault"):
            return os_attribute(node.value, "environ")
        if isinstance(node, ast.Subscript):
            return os_attribute(node.value, "environ")
        if isinstance(node, ast.Compare):
            return any(os_attribute(operand, "environ") for operand in node.comparators)
        if isinstance(node, ast.ImportFrom):
            return node.module == "os" and any(alias.name in ("environ", "getenv") for alias in node.names)
        return os_attribute(node, "getenv")

    return sorted(node.lineno for node in ast.walk(tree) if reads(node))


def test_no_module_but_the_settings_reads_the_environment() -> None:
    reads = {
        f"{path.relative_to(PROJECT)}:{line}"
        for path in _sources()
        if path != CONFIG_MODULE
        for line in _environment_reads(ast.parse(path.read_text()))
    }

    assert reads == set()


def test_the_check_finds_each_way_of_reading_the_environment() -> None:
    code = (
        "import os\nfrom os import getenv\n"
        "a = os.environ.get('X')\nb = os.getenv('X')\nc = os.environ['X']\nd = 'X' in os.environ\n"
        "env = dict(os.environ.items())\n"
    )

    assert _environment_reads(ast.parse(code)) == [2, 3, 4, 5, 6]


def test_settings_follow_the_environment_at_each_call(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("IOTSPHERE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IOTSPHERE_ACTOR", "robot:config")
    monkeypatch.setenv("IOTSPHERE_TOPIC_PREFIX", "")  # as a compose file writes an unset value: the default
    assert CloudConfig().data_dir == tmp_path and configured_actor() == "robot:config"
    assert CloudConfig().topic_prefix == Settings.model_fields["topic_prefix"].default

    monkeypatch.setenv("IOTSPHERE_DATA_DIR", str(tmp_path / "other"))
    assert CloudConfig().data_dir == tmp_path / "other"
    assert CloudConfig(data_dir=tmp_path).data_dir == tmp_path  # an option wins over the environment


def test_secrets_are_read_but_never_shown(monkeypatch) -> None:
    monkeypatch.setenv("IOTSPHERE_KEY_PASSPHRASE", "correct horse")
    monkeypatch.setenv("IOTSPHERE_GATEWAY_KEY", "gw-secret")

    assert key_passphrase() == "correct horse" and secret("gateway_key") == "gw-secret"
    assert "correct horse" not in repr(settings()) and "gw-secret" not in str(settings())
    monkeypatch.setenv("IOTSPHERE_KEY_PASSPHRASE", "")  # kept empty: the keystore refuses it rather than prompting
    assert key_passphrase() == ""


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("IOTSPHERE_DEPLOYMENT_DEADLINE_S", "soon", "IOTSPHERE_DEPLOYMENT_DEADLINE_S must be a number, not 'soon'"),
        ("IOTSPHERE_DEPLOYMENT_DEADLINE_S", "0", "IOTSPHERE_DEPLOYMENT_DEADLINE_S must be greater than 0, not '0'"),
        ("IOTSPHERE_API_MAX_BODY_BYTES", "1.5", "IOTSPHERE_API_MAX_BODY_BYTES must be a whole number, not '1.5'"),
        ("IOTSPHERE_ROLLOUT_AUTO_CANARY", "maybe", "IOTSPHERE_ROLLOUT_AUTO_CANARY must be 1 or 0"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(monkeypatch, name, value, expected) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(SettingsError, match=re.escape(expected)):
        settings()


def test_a_command_reports_a_bad_variable_without_a_traceback(tmp_path) -> None:
    env = {**os.environ, "IOTSPHERE_API_MAX_BODY_BYTES": "lots", "IOTSPHERE_DATA_DIR": str(tmp_path)}

    done = subprocess.run(
        [str(Path(sys.executable).parent / "iotsphere"), "predictions", "list"],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env=env,
        timeout=60,
        check=False,
    )

    assert done.returncode != 0
    assert "IOTSPHERE_API_MAX_BODY_BYTES must be a whole number, not 'lots'" in done.stderr
    assert "Traceback" not in done.stderr


def test_option_defaults_come_from_the_settings_when_a_command_runs(monkeypatch) -> None:
    mqtt_url, gateway_key = from_settings("mqtt_url"), from_settings("gateway_key")
    monkeypatch.setenv("IOTSPHERE_MQTT_URL", "mqtts://broker.example:8883")
    monkeypatch.setenv("IOTSPHERE_GATEWAY_KEY", "iots_gateway")

    assert (mqtt_url(), gateway_key()) == ("mqtts://broker.example:8883", "iots_gateway")  # a secret as its text
    monkeypatch.setenv("IOTSPHERE_DEPLOYMENT_DEADLINE_S", "soon")
    with pytest.raises(click.UsageError, match="IOTSPHERE_DEPLOYMENT_DEADLINE_S must be a number, not 'soon'"):
        mqtt_url()
