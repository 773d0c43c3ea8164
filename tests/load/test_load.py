"""The load generator: its messages are the wire contract, its counts follow the agents' rates, and a real
IngestWorker stores all of it through the real Mosquitto with no dead letter."""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from cloud.config import CloudConfig
from cloud.ingest import IngestWorker
from cloud.storage import open_database
from cloud.training import anomaly, component_failure, labels, usage_outputs
from edge_agent.agent import BATCH_ROWS
from edge_agent.config import AgentConfig
from firmware_sim.load import BATCH_ROWS as LOAD_BATCH_ROWS
from firmware_sim.load import (
    FEATURE_INTERVAL_S,
    MODEL_OUTPUTS,
    STATUS_INTERVAL_S,
    LoadGenerator,
    LoadProfile,
    Traffic,
    parse_rate,
    schedule,
)
from iotsphere.cli import main
from shared.features import FEATURE_NAMES
from shared.messages import FeatureBatch, GatewayStatus, PredictionBatch, PredictionType, parse_up
from shared.topics import Up
from tests.ingest.helpers import BROKER_URL, count, forget_session, unique, wait_for

DUE = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def test_rates_are_the_edge_agents_defaults() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(AgentConfig)}
    assert fields["feature_interval"].total_seconds() == FEATURE_INTERVAL_S
    assert fields["status_interval"] == STATUS_INTERVAL_S
    assert LOAD_BATCH_ROWS == BATCH_ROWS


def test_outputs_are_what_the_trained_models_serve() -> None:
    assert list(MODEL_OUTPUTS[PredictionType.COMPONENT_FAILURE]) == labels.CLASSES
    assert MODEL_OUTPUTS[PredictionType.USAGE_PATTERN] == (usage_outputs.LABEL,)
    assert MODEL_OUTPUTS[PredictionType.ANOMALY] == (anomaly.LABEL,)
    assert component_failure.OUTPUT  # the module the failure labels belong to


@pytest.mark.parametrize("channel", [Up.FEATURES, Up.PREDICTIONS, Up.STATUS, Up.EVENTS])
def test_every_message_decodes_with_the_shared_models(channel: Up) -> None:
    traffic = Traffic(LoadProfile(gateways=3, heaters_per_gateway=7), seed=1)

    message = traffic.message(channel, 2, DUE)
    decoded = parse_up(channel.value, message.to_json())

    assert decoded == message
    assert traffic.message(channel, 2, DUE).msg_id != message.msg_id
    assert decoded.gateway_id == traffic.gateway_id(2)
    if isinstance(decoded, FeatureBatch):
        assert decoded.feature_names == FEATURE_NAMES
        assert len(decoded.rows) == 7
        assert len({tuple(row.values) for row in decoded.rows}) == 7
        assert decoded.rows[0].window_end == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    if isinstance(decoded, PredictionBatch):
        assert len(decoded.predictions) == 7 * 3
    if isinstance(decoded, GatewayStatus):
        assert decoded.heaters == 7


def test_schedule_counts_follow_the_intervals() -> None:
    """Over whole hours every gateway sends one feature and one prediction batch an hour and a status a minute."""
    profile = LoadProfile(gateways=50)
    hours = 3

    sent = [channel for _offset, channel, _gateway in schedule(profile, hours * 3600.0, seed=4)]

    assert sent.count(Up.FEATURES) == sent.count(Up.PREDICTIONS) == 50 * hours
    assert sent.count(Up.STATUS) == 50 * 60 * hours
    expected_events = 50 * hours * 3600 / profile.event_interval_s
    assert 0.3 * expected_events <= sent.count(Up.EVENTS) <= 2 * expected_events


def test_a_rate_is_a_multiplier_or_messages_per_second() -> None:
    profile = LoadProfile(gateways=1000)

    assert parse_rate("60", profile) == parse_rate("60x", profile) == 60
    assert parse_rate("500/s", profile) * profile.messages_per_second() == pytest.approx(500)
    for bad in ("0", "-3", "fast", "5/min"):
        with pytest.raises(ValueError, match="positive multiplier"):
            parse_rate(bad, profile)


def test_a_real_worker_stores_everything_with_no_dead_letter(tmp_path) -> None:
    prefix = f"{unique('load')}/iotsphere/v1"
    config = CloudConfig(data_dir=tmp_path, mqtt_url=BROKER_URL, topic_prefix=prefix)
    worker = IngestWorker(config, client_id=unique("ingest"))
    worker.start()
    profile = LoadProfile(gateways=5, heaters_per_gateway=5)
    try:
        # three hours of simulated traffic in one real second: 931 messages, under the 1000 that Mosquitto's default
        # max_queued_messages lets a session queue (past it the broker drops them: docs/ingest_sessions.md)
        stats = LoadGenerator(profile, BROKER_URL, rate=3 * 3600, prefix=prefix, seed=1, retain_status=False).run(1.0)
        wait_for(lambda: worker.stats.stored >= stats.sent, timeout=60, what="every message stored")
    finally:
        worker.stop()
        forget_session(worker.client_id)

    assert stats.failed == 0
    assert (stats.messages["features"], stats.messages["predictions"]) == (5 * 3, 5 * 3)
    assert stats.messages["status"] == 5 * 60 * 3
    assert stats.messages["events"] == 1  # expected 5 × 3 h / 14 h; this seed sends one
    assert worker.stats.stored == stats.sent
    db = open_database(config.database_path)
    try:
        assert count(db, "dead_letters") == 0
        assert count(db, "features") == 5 * 5 * 3
        assert count(db, "predictions") == 5 * 5 * 3 * 3
        assert count(db, "gateways") == 5
        assert count(db, "devices") == 5 * 5
        assert count(db, "gateway_events") == 1
    finally:
        db.conn.close()


def test_cli_help_and_a_short_run() -> None:
    runner = CliRunner()

    assert "--heaters-per-gateway" in runner.invoke(main, ["sim", "load", "--help"]).output
    prefix = f"{unique('load-cli')}/iotsphere/v1"
    args = ["sim", "load", "--gateways", "5", "--rate", "600", "--duration", "0.5", "--prefix", prefix]
    result = runner.invoke(main, [*args, "--mqtt", BROKER_URL, "--no-retain"])

    assert result.exit_code == 0, result.output
    assert "sent 25 messages (status 25)" in result.output  # 5 gateways × 5 simulated minutes; seed 0: no batch due
    bad = runner.invoke(main, ["sim", "load", "--gateways", "5", "--rate", "fast"])
    assert bad.exit_code == 2 and "positive multiplier" in bad.output


def test_ctrl_c_stops_cleanly_with_a_summary() -> None:
    """The first Ctrl-C ends the run once the broker has what was sent: exit 0 and the closing summary, no traceback."""
    prefix = f"{unique('load-sigint')}/iotsphere/v1"
    command = [str(Path(sys.executable).with_name("iotsphere")), "sim", "load", "--gateways", "50", "--rate", "600"]
    command += ["--every", "0.2", "--mqtt", BROKER_URL, "--prefix", prefix, "--no-retain"]
    run = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        while "msgs (" not in run.stderr.readline():  # a first progress line: it is publishing
            assert run.poll() is None, "the generator ended before it was interrupted"
        run.send_signal(signal.SIGINT)
        _out, err = run.communicate(timeout=60)
    finally:
        run.kill()

    assert run.returncode == 0, err
    assert "Traceback" not in err
    assert re.search(r"sent [1-9]\d* messages .* 0 failed", err), err
