"""``mqtt://user:pass@host:port`` (or ``mqtts://``) → connection settings, for edge and cloud alike."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class MqttEndpoint:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None


def shown(url: str) -> str:
    """The URL as a message or log may name it: the password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def parse_mqtt_url(url: str) -> MqttEndpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"MQTT URL {shown(url)!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError(f"MQTT URL {shown(url)!r} has no host")
    tls = parts.scheme in ("mqtts", "ssl")
    return MqttEndpoint(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def connect_error(exc: BaseException | None) -> str:
    """Why a connect failed, in words; a broker certificate the client cannot verify names the setting that fixes
    it. paho's ``on_connect_fail`` gets no exception but runs inside paho's ``except OSError``, so its handlers pass
    ``sys.exc_info()[1]``."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate verify failed ({exc.verify_message}): the broker's certificate must be signed by the CA "
            "in IOTSPHERE_MQTT_CA (or a system CA) and name the host of the MQTT URL"
        )
    return str(exc) if exc is not None else "unknown reason"


def apply_endpoint(client, endpoint: MqttEndpoint) -> None:
    """Give a paho client the endpoint's credentials and, for ``mqtts://``, TLS that verifies the broker against
    ``IOTSPHERE_MQTT_CA`` (a private CA, as deploy/make_secrets.py makes) or else the system's CAs.

    Every MQTT client of the project comes through here (the gateway's serving process through
    ``apply_endpoint_with_ca``, its command having read the setting), so one setting serves cloud, gateways and tools.
    """
    ca_file = None
    if endpoint.tls:
        from shared.settings import settings  # shared.settings imports this module

        ca_file = settings().mqtt_ca
    apply_endpoint_with_ca(client, endpoint, ca_file)


def apply_endpoint_with_ca(client, endpoint: MqttEndpoint, ca_file: Path | None) -> None:
    """``apply_endpoint`` with the CA file given (None: the system's CAs) instead of read from the settings."""
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set_context(tls_context(ca_file))


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """A client context verifying the broker's certificate and name against ``ca_file`` (None: the system's CAs);
    a file that holds no certificate is a ``SettingsError`` naming ``IOTSPHERE_MQTT_CA``."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except ssl.SSLError as exc:
        from shared.settings import SettingsError  # only on this error: the gateway's agent never loads the settings

        raise SettingsError(
            f"IOTSPHERE_MQTT_CA={ca_file} holds no PEM certificate a client can trust: {exc.reason or exc}"
        ) from None
