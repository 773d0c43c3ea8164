"""What Mosquitto does with a shared subscription's messages when a member goes away: the facts the ingest
worker's session design (cloud/ingest/worker.py, "Workers that stop"; docs/ingest_sessions.md) rests on.

Each test publishes to a group of two members, A and B, on a private broker, with A gone in a different way.
A barrier tells when B has everything the broker meant for it: B also subscribes (not shared) to a topic of its
own, and Mosquitto delivers a client's messages in order, so once B has a message published there last, it has
all that was routed to it before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.ingest.helpers import wait_for
from tests.private_broker import PrivateBroker

GROUP = "$share/measure/measure/#"
TOTAL = 40


@pytest.fixture
def broker(tmp_path) -> Iterator[PrivateBroker]:
    with PrivateBroker(tmp_path, extra_config="allow_anonymous true\nmax_inflight_messages 5\n") as running:
        yield running


class Member:
    """A paho client in the group that records what it receives, acknowledging it only if ``acks``."""

    def __init__(self, port: int, client_id: str, *, clean: bool, acks: bool = True, expiry: int | None = None) -> None:
        self.port, self.expiry, self.clean = port, expiry, clean
        protocol = mqtt.MQTTv5 if expiry is not None else mqtt.MQTTv311
        kwargs = {} if expiry is not None else {"clean_session": clean}
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, manual_ack=not acks, **kwargs
        )
        self.got: list[str] = []
        self.session_present: bool | None = None
        self.client.on_message = lambda _c, _u, message: self.got.append(message.payload.decode())
        self.client.on_connect = lambda _c, _u, flags, _rc, _p: setattr(self, "session_present", flags.session_present)

    def connect(self, *subscriptions: str) -> Member:
        if self.expiry is None:
            self.client.connect("127.0.0.1", self.port)
        else:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = self.expiry
            self.client.connect("127.0.0.1", self.port, clean_start=self.clean, properties=properties)
        self.client.loop_start()
        wait_for(lambda: self.session_present is not None, what="CONNACK")
        for topic in subscriptions:
            self.client.subscribe(topic, qos=1)
        return self

    def leave(self, *, gracefully: bool) -> None:
        if gracefully:
            self.client.disconnect()
        else:  # as kill -9 would: the socket closes without DISCONNECT
            self.client.socket().close()
        self.client.loop_stop()


def publish(port: int, *topics_and_payloads: tuple[str, str]) -> None:
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="measure-publisher")
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    for topic, payload in topics_and_payloads:
        publisher.publish(topic, payload, qos=1).wait_for_publish(10)
    publisher.disconnect()
    publisher.loop_stop()


def stream(start: int = 0) -> list[tuple[str, str]]:
    return [(f"measure/gw-{i % 3}", str(i)) for i in range(start, start + TOTAL)]


def barrier(port: int, member: Member) -> None:
    """Return once ``member`` has received everything the broker routed to it so far."""
    publish(port, ("barrier/b", "barrier"))
    wait_for(lambda: "barrier" in member.got, what="the barrier")
    member.got.remove("barrier")


def settled_members(broker: PrivateBroker, gone: Member) -> Member:
    """B in the group, A too, then A's subscription settled before it goes."""
    b = Member(broker.port, "member-b", clean=True).connect(GROUP, "barrier/b")
    gone.connect(GROUP)
    time.sleep(0.2)  # SUBACKs: both members subscribed before anything is published
    return b


def test_a_a_gone_persistent_member_keeps_getting_its_share_queued_until_it_returns(broker):
    a = Member(broker.port, "member-a", clean=False)
    b = settled_members(broker, a)
    a.leave(gracefully=False)
    publish(broker.port, *stream())
    barrier(broker.port, b)

    assert len(b.got) == TOTAL // 2  # round robin over both members, present or not
    back = Member(broker.port, "member-a", clean=False).connect()
    wait_for(lambda: len(back.got) == TOTAL // 2, what="A's share delivered when it returns")
    assert back.session_present and sorted(back.got + b.got, key=int) == [p for _, p in stream()]


def test_b_a_clean_session_that_drops_with_unacknowledged_messages_loses_them(broker):
    a = Member(broker.port, "member-a", clean=True, acks=False)
    b = settled_members(broker, a)
    publish(broker.port, *stream())
    wait_for(lambda: len(a.got) == 5, what="A's in-flight window full (max_inflight_messages 5)")
    a.leave(gracefully=False)
    barrier(broker.port, b)
    publish(broker.port, *stream(TOTAL))
    barrier(broker.port, b)

    assert len(b.got) == TOTAL // 2 + TOTAL  # after A dropped, B gets everything new, but not A's share
    lost = {p for _, p in stream()} - set(b.got)
    assert len(lost) == TOTAL // 2  # the 5 A had in flight, unacknowledged, and the 15 queued behind them


def test_c_an_expiring_mqtt5_session_drops_what_it_queued(broker):
    a = Member(broker.port, "member-a", clean=True, expiry=1)
    b = settled_members(broker, a)
    a.leave(gracefully=True)
    publish(broker.port, *stream())
    barrier(broker.port, b)
    time.sleep(2.5)  # past the session expiry of 1 s (Mosquitto checks expiries about once a second)
    publish(broker.port, *stream(TOTAL))
    barrier(broker.port, b)

    assert len(b.got) == TOTAL // 2 + TOTAL  # the expired session no longer takes a share of new messages ...
    back = Member(broker.port, "member-a", clean=False, expiry=60).connect()
    publish(broker.port, ("measure/after", "after"))  # ... and returning finds no session, nothing queued
    wait_for(lambda: "after" in b.got, what="a message after A returned")
    assert back.session_present is False and back.got == []
    assert len({p for _, p in stream()} - set(b.got)) == TOTAL // 2
