"""``iotsphere cloud ingest`` as an operator runs it: a process that stores until SIGTERM and reports its counts."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared.topics import Up
from tests.ingest.helpers import BROKER_URL, count, features, forget_session, unique, wait_for

pytestmark = pytest.mark.mqtt

IOTSPHERE = str(Path(sys.executable).parent / "iotsphere")


def test_the_command_stores_until_sigterm_and_prints_stats(config, publisher, db):
    client_id = unique("ingest-cli")
    command = [IOTSPHERE, "cloud", "ingest", "--mqtt", BROKER_URL, "--data-dir", str(config.data_dir)]
    command += ["--prefix", config.topic_prefix, "--client-id", client_id, "--stats-every", "0.2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: process.stdout.readline().startswith("ingest: storing $share/"), what="the start line")
        publisher.send(features(window=1), Up.FEATURES)
        publisher.raw(f"{config.topic_prefix}/gw/gw1/up/features", b"not json")
        wait_for(lambda: count(db, "features") == 1 and count(db, "dead_letters") == 1, what="both stored")
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
        forget_session(client_id)
    assert process.returncode == 0, err
    last = out.strip().splitlines()[-1]
    assert "stored=1" in last and "dead_lettered=1" in last and "storage_errors=0" in last


def test_an_unreachable_broker_is_a_clear_error(config, db):
    command = [IOTSPHERE, "cloud", "ingest", "--mqtt", "mqtt://127.0.0.1:1", "--data-dir", str(config.data_dir)]
    command += ["--connect-timeout", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "could not subscribe" in result.stderr and "127.0.0.1:1" in result.stderr
