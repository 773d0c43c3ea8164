import pytest

from shared.topics import (
    Down,
    Up,
    down_topic,
    parse_gateway_topic,
    parse_telemetry_topic,
    shared_subscription,
    telemetry_topic,
    up_topic,
    up_wildcard,
)


def test_up_and_down_topics_round_trip():
    topic = up_topic("gw-1", Up.PREDICTIONS, prefix="p/v1")
    assert topic == "p/v1/gw/gw-1/up/predictions"
    parsed = parse_gateway_topic(topic, prefix="p/v1")
    assert (parsed.gateway_id, parsed.direction, parsed.channel) == ("gw-1", "up", "predictions")
    assert parse_gateway_topic(down_topic("gw-1", Down.DESIRED)).channel == "desired"


@pytest.mark.parametrize(
    "topic",
    [
        "iotsphere/v1/gw/gw1/up/nope",
        "iotsphere/v1/gw/gw1/sideways/status",
        "other/gw/gw1/up/status",
        "iotsphere/v1/gw/a/b/up/x",
    ],
)
def test_parse_rejects_foreign_topics(topic):
    with pytest.raises(ValueError):
        parse_gateway_topic(topic)


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "x" * 65, "-lead"])
def test_ids_that_would_break_topics_are_refused(bad):
    with pytest.raises(ValueError):
        up_topic(bad, Up.STATUS)


def test_wildcards_and_telemetry():
    assert shared_subscription(up_wildcard()) == "$share/iotsphere-ingest/iotsphere/v1/gw/+/up/#"
    assert parse_telemetry_topic(telemetry_topic("gw1", "wh-7")) == ("gw1", "wh-7")
    with pytest.raises(ValueError):
        parse_telemetry_topic("site/gw1/heaters/wh-7/status")
