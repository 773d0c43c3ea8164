"""Workers come and go without holding messages hostage: a killed worker's session is adopted, a retired one ends.

Each test runs its own Mosquitto (tests/private_broker.py) so the sessions it leaves behind vanish with it, and
short lease settings (heartbeat 0.2 s, lapse after 1 s) so the bound is reached within seconds.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud.config import CloudConfig
from cloud.ingest import IngestWorker
from cloud.ingest.session_leases import LeaseHeld, SessionLeases
from cloud.storage import open_database
from shared.topics import Up, up_topic
from tests.ingest.helpers import count, features, unique, wait_for
from tests.private_broker import PrivateBroker
from tests.rows import rows_of, update_rows

IOTSPHERE = str(Path(sys.executable).parent / "iotsphere")
HEARTBEAT, STALE_AFTER = 0.2, 1.0
LEASE = {"heartbeat_interval": HEARTBEAT, "stale_after": STALE_AFTER}
#: Generous against the bound (STALE_AFTER + HEARTBEAT + a drain of a few hundred messages) on a loaded machine.
WITHIN_BOUND = 30.0
GATEWAYS = ("gw-1", "gw-2", "gw-3")


@pytest.fixture
def broker(tmp_path) -> Iterator[PrivateBroker]:
    with PrivateBroker(tmp_path / "broker", persistence=False) as running:
        yield running


@pytest.fixture
def config(tmp_path, broker) -> CloudConfig:
    return CloudConfig(data_dir=tmp_path / "cloud", mqtt_url=broker.url, topic_prefix="test/iotsphere/v1")


@pytest.fixture
def db(config):
    database = open_database(config.database_url)
    yield database
    database.close()


class Gateways:
    """Several gateways publishing QoS 1 features, each message acknowledged by the broker before the next."""

    def __init__(self, config: CloudConfig, port: int) -> None:
        self.prefix = config.topic_prefix
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("gateways"))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.sent = 0

    def send(self, total: int, start: int = 0, pause: float = 0.0) -> None:
        for window in range(start, start + total):
            time.sleep(pause)
            gateway = GATEWAYS[window % len(GATEWAYS)]
            message = features(gateway=gateway, window=window)
            self.client.publish(up_topic(gateway, Up.FEATURES, self.prefix), message.to_json(), qos=1).wait_for_publish(
                10
            )
            self.sent += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def gateways(config, broker) -> Iterator[Gateways]:
    publisher = Gateways(config, broker.port)
    yield publisher
    publisher.close()


def ingest_command(config: CloudConfig, *options: str) -> list[str]:
    """``iotsphere cloud ingest`` as an operator runs it, on the test's broker, database and prefix."""
    command = [IOTSPHERE, "cloud", "ingest", "--mqtt", config.mqtt_url, "--data-dir", str(config.data_dir)]
    return [*command, "--prefix", config.topic_prefix, *options]


def worker_process(config: CloudConfig, client_id: str) -> subprocess.Popen:
    """A worker process with the test's short lease settings, once it has subscribed."""
    options = ["--client-id", client_id, "--stats-every", "0.2"]
    options += ["--heartbeat-interval", str(HEARTBEAT), "--stale-after", str(STALE_AFTER)]
    process = subprocess.Popen(
        ingest_command(config, *options), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for(lambda: process.stdout.readline().startswith("ingest: storing $share/"), what=f"{client_id} started")
    return process


def session_present(port: int, client_id: str) -> bool:
    """Whether the broker still keeps a session for ``client_id`` (connecting with it, then ending it)."""
    answers = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_connect = lambda _c, _u, flags, _rc, _p: answers.append(flags.session_present)
    client.connect("127.0.0.1", port)
    client.loop_start()
    wait_for(lambda: answers, what="CONNACK")
    client.disconnect()
    client.loop_stop()
    return answers[0]


def all_stored_once(db, total: int) -> bool:
    return count(db, "ingested_messages") == total and count(db, "features") == total


def test_a_worker_killed_for_good_mid_stream_is_adopted_and_every_message_is_stored_once(config, broker, gateways, db):
    total = 300
    killed, survivor = worker_process(config, "ingest-a"), worker_process(config, "ingest-b")
    publishing = threading.Thread(target=gateways.send, args=(total,), kwargs={"pause": 0.01})
    try:
        publishing.start()
        wait_for(lambda: count(db, "ingested_messages") >= 60, what="both workers storing")
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        killed_at = gateways.sent
        publishing.join()
        assert killed_at < total, "the worker should have been killed while messages were still being published"

        wait_for(lambda: all_stored_once(db, total), timeout=WITHIN_BOUND, what=f"all {total} messages stored")
        wait_for(lambda: SessionLeases(db, STALE_AFTER).get("ingest-a") is None, what="the adopted lease dropped")
    finally:
        survivor.send_signal(signal.SIGTERM)
        out, err = survivor.communicate(timeout=20)
    assert survivor.returncode == 0, err
    assert "adopting session ingest-a" in err
    windows = {row["window_end"] for row in rows_of(db, "features")}
    assert len(windows) == total
    assert {row["gateway_id"] for row in rows_of(db, "ingested_messages")} == set(GATEWAYS)
    assert not session_present(broker.port, "ingest-a"), "the dead worker's session should have ended for good"


def test_a_stopped_worker_keeps_its_session_when_no_peer_is_there_to_adopt_it(config, broker, gateways, db):
    worker = IngestWorker(config, client_id="ingest-a", **LEASE)
    worker.start()
    worker.stop()
    gateways.send(20)

    restarted = IngestWorker(config, client_id="ingest-a", **LEASE)
    restarted.start()
    try:
        wait_for(lambda: all_stored_once(db, 20), what="the queued messages stored after the restart")
    finally:
        restarted.stop()


@pytest.mark.parametrize("mqtt5", [False, True], ids=["mqtt311", "mqtt5"])
def test_retire_ends_the_session_at_once_and_its_share_goes_to_the_others(config, broker, gateways, db, mqtt5):
    # nothing here waits for a lease to lapse: a longer one keeps a renewal late under load from being taken for a
    # worker gone (one CI run saw the retiring worker adopt the staying one's session)
    lease = {"heartbeat_interval": HEARTBEAT, "stale_after": 10 * STALE_AFTER}
    retiring = IngestWorker(config, client_id="ingest-a", mqtt5=mqtt5, **lease)
    staying = IngestWorker(config, client_id="ingest-b", mqtt5=mqtt5, **lease)
    retiring.start()
    staying.start()
    try:
        gateways.send(100)
        retiring.retire()
        assert retiring.stats.stored > 0, "the retired worker should have had its share"
        gateways.send(100, start=100)
        wait_for(lambda: all_stored_once(db, 200), what="all 200 messages stored")
        assert staying.stats.stored == 200 - retiring.stats.stored
    finally:
        staying.stop()
    assert SessionLeases(db, 10 * STALE_AFTER).get("ingest-a") is None
    assert not session_present(broker.port, "ingest-a")


def test_the_cli_retires_a_stopped_workers_session_storing_what_it_queued(config, broker, gateways, db):
    worker = IngestWorker(config, client_id="ingest-a", **LEASE)
    worker.start()
    # a peer that renews its lease but looks for lapsed ones only every 30 s: the command does the adopting here
    peer = IngestWorker(config, client_id="ingest-b", heartbeat_interval=30, stale_after=60)
    peer.start()
    worker.stop()
    try:
        gateways.send(50)  # ingest-a's share waits in its session
        wait_for(lambda: peer.stats.stored == 25, what="the peer storing its share")

        done = subprocess.run(
            ingest_command(config, "--retire", "ingest-a"), capture_output=True, text=True, timeout=60
        )

        assert done.returncode == 0, done.stderr
        assert "session ingest-a ended for good" in done.stdout and "stored=25" in done.stdout
        assert all_stored_once(db, 50)
        assert not session_present(broker.port, "ingest-a")
    finally:
        peer.stop()


def test_retiring_the_last_worker_is_refused_because_the_broker_would_drop_what_comes_next(config, broker, db):
    worker = IngestWorker(config, client_id="ingest-a", **LEASE)
    worker.start()
    try:
        with pytest.raises(ConnectionError, match="no other worker .* runs: once 'ingest-a' retired"):
            worker.retire()
        assert worker._thread.is_alive()
    finally:
        worker.stop()
    assert session_present(broker.port, "ingest-a")


def test_the_cli_refuses_to_retire_a_running_worker(config, broker, db):
    running = IngestWorker(config, client_id="ingest-a", **LEASE)
    running.start()
    peer = IngestWorker(config, client_id="ingest-b", **LEASE)
    peer.start()
    try:
        done = subprocess.run(
            ingest_command(config, "--retire", "ingest-a"), capture_output=True, text=True, timeout=60
        )
        assert running.stats.storage_errors == 0
    finally:
        running.stop()
        peer.stop()
    assert done.returncode == 1
    assert "held by 'ingest-a'" in done.stderr and "stop it first" in done.stderr


def test_a_worker_coming_back_waits_for_the_adoption_of_its_session(config, db):
    worker = IngestWorker(config, client_id="ingest-a", **LEASE)
    leases = SessionLeases(db, ttl=60)
    leases.acquire("ingest-a", worker.topic_filter, holder="ingest-b")  # ingest-b is adopting ingest-a's session
    with pytest.raises(LeaseHeld, match="held by 'ingest-b'"):
        worker.start(timeout=0.3)


def test_retiring_where_the_broker_forbids_the_drain_topic_keeps_the_session_and_says_why(tmp_path):
    """deploy/mosquitto/acl grants the cloud user its drain topics. Mosquitto grants any subscription and drops
    a denied publish silently, so the marker never comes back: the worker gives up and joins the group again."""
    filters = ["test/iotsphere/v1/gw/+/up/#", "$share/iotsphere-ingest/test/iotsphere/v1/gw/+/up/#"]
    acl = tmp_path / "acl"
    acl.write_text("".join(f"topic read {f}\n" for f in filters) + f"topic write {filters[0]}\n")
    acl_config = f"allow_anonymous true\nacl_file {acl}\n"
    with PrivateBroker(tmp_path / "broker", extra_config=acl_config, persistence=False) as broker:
        config = CloudConfig(data_dir=tmp_path / "cloud", mqtt_url=broker.url, topic_prefix="test/iotsphere/v1")
        worker = IngestWorker(config, client_id="ingest-a", **LEASE)
        worker.start()
        peer = IngestWorker(config, client_id="ingest-b", heartbeat_interval=30, stale_after=60)
        peer.start()
        gateways = Gateways(config, broker.port)
        gateways.send(10)
        with pytest.raises(ConnectionError, match="not even the drain marker: .*'test/iotsphere/v1/ingest/drain/"):
            worker.retire()
        gateways.send(10, start=10)  # a share of these goes to ingest-a's session again, kept for it

        again = IngestWorker(config, client_id="ingest-a", **LEASE)
        again.start()
        db = open_database(config.database_url)
        try:
            wait_for(lambda: all_stored_once(db, 20), what="all 20 messages stored")
            assert again.stats.stored > 0
        finally:
            again.stop()
            peer.stop()
            gateways.close()
            db.close()


def test_under_the_shipped_broker_acl_the_cloud_user_retires_a_worker(tmp_path):
    passwords = tmp_path / "passwords"
    passwords.touch()
    for user in ("cloud", "gw-1"):
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, f"{user}-secret"], check=True)
    acl = Path(__file__).parents[2] / "deploy" / "mosquitto" / "acl"
    settings = f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n"
    with PrivateBroker(tmp_path / "broker", extra_config=settings, persistence=False) as broker:
        url = f"mqtt://cloud:cloud-secret@127.0.0.1:{broker.port}"
        config = CloudConfig(data_dir=tmp_path / "cloud", mqtt_url=url, topic_prefix="iotsphere/v1")
        retiring, staying = (IngestWorker(config, client_id=name, **LEASE) for name in ("ingest-a", "ingest-b"))
        retiring.start()
        staying.start()
        gateway = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-1")
        gateway.username_pw_set("gw-1", "gw-1-secret")
        gateway.connect("127.0.0.1", broker.port)
        gateway.loop_start()
        db = open_database(config.database_url)
        try:
            for window in range(20):
                message = features(gateway="gw-1", window=window).to_json()
                gateway.publish(up_topic("gw-1", Up.FEATURES), message, qos=1).wait_for_publish(10)
            retiring.retire()
            wait_for(lambda: all_stored_once(db, 20), what="all 20 messages stored")
        finally:
            staying.stop()
            gateway.disconnect()
            gateway.loop_stop()
            db.close()
        assert retiring.stats.stored > 0


def test_a_worker_taken_for_gone_while_alive_steps_aside_then_comes_back(config, broker, gateways, db):
    """A worker too slow to renew (here: its lease made to lapse) is adopted while it runs: it loses its
    connection to the adopter, does not take the session back while the adoption holds the lease, and returns
    with a fresh session once it has ended."""
    slow = IngestWorker(config, client_id="ingest-a", heartbeat_interval=2, stale_after=10)
    peer = IngestWorker(config, client_id="ingest-b", **LEASE)
    slow.start()
    peer.start()
    publishing = threading.Thread(target=gateways.send, args=(200,), kwargs={"pause": 0.01})
    try:
        publishing.start()
        wait_for(lambda: slow.stats.stored > 0, what="the slow worker storing its share")
        update_rows(db, "ingest_sessions", {"client_id": "ingest-a"}, {"lapses_at": 0.0})
        publishing.join()
        wait_for(lambda: all_stored_once(db, 200), timeout=WITHIN_BOUND, what="all 200 messages stored")

        wait_for(lambda: slow._connected and slow._holding, timeout=WITHIN_BOUND, what="the slow worker back")
        stored_before = slow.stats.stored
        gateways.send(20, start=200)
        wait_for(lambda: all_stored_once(db, 220), what="the next 20 stored")
        assert slow.stats.stored > stored_before, "the worker that came back should have its share again"
    finally:
        slow.stop()
        peer.stop()
