"""MQTT URLs as messages name them: a gateway's broker password never reaches a log or the terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.mqtt_url import parse_mqtt_url, shown


def test_a_password_is_replaced_and_the_rest_kept() -> None:
    assert shown("mqtts://gw-1:s3cr%40t@broker:8883") == "mqtts://gw-1:***@broker:8883"
    assert shown("mqtt://127.0.0.1:1883") == "mqtt://127.0.0.1:1883"
    assert shown("mqtt://only-user@broker") == "mqtt://only-user@broker"


def test_a_malformed_url_is_refused_without_its_password() -> None:
    with pytest.raises(ValueError) as refused:
        parse_mqtt_url("http://gw-1:hunter2@broker")
    assert "hunter2" not in str(refused.value) and "gw-1:***@broker" in str(refused.value)


def test_the_simulator_does_not_print_the_password_it_connects_with() -> None:
    iotsphere = str(Path(sys.executable).parent / "iotsphere")
    command = [iotsphere, "sim", "run", "--gateway", "gw-1", "--heaters", "1", "--duration", "1"]
    result = subprocess.run(
        [*command, "--mqtt", "mqtt://gw-1:hunter2@127.0.0.1:1"], capture_output=True, text=True, timeout=60
    )
    assert "gw-1:***@127.0.0.1:1" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr
