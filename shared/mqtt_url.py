"""``mqtt://user:pass@host:port`` (or ``mqtts://``) → connection settings, for edge and cloud alike."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"


@dataclass(frozen=True)
class MqttEndpoint:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None


def parse_mqtt_url(url: str) -> MqttEndpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"MQTT URL {url!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError(f"MQTT URL {url!r} has no host")
    tls = parts.scheme in ("mqtts", "ssl")
    return MqttEndpoint(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def apply_endpoint(client, endpoint: MqttEndpoint) -> None:
    """Give a paho client the endpoint's credentials and, for ``mqtts://``, TLS with the system's CAs."""
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set()
