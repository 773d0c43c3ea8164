"""The embedded MQTT broker (amqtt, pure Python): ``make demo`` needs no Mosquitto.

amqtt runs on asyncio; ``EmbeddedBroker`` gives it a loop of its own in a background thread so the
synchronous rest of the system (paho clients, uvicorn in its thread) talks to it like to any broker.
amqtt speaks MQTT 3.1.1 only and has no shared subscriptions (``$share``): run the ingest worker with
``shared_group=None`` against it. Anonymous clients on loopback only; the $SYS and packet-logging
plugins amqtt loads by default are left out (they cost time per packet and show nothing the demo needs).

Known amqtt 0.12 limits, measured: it queues nothing for a disconnected persistent session of an anonymous
client (so the ingest worker must be running while gateways publish: their outbox counts a message as sent
once the broker has acknowledged it), and it carries roughly 900 QoS 1 messages a second on this machine.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

from amqtt.broker import Broker

log = logging.getLogger(__name__)

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class _Broker(Broker):
    """amqtt's broker, sending a connecting client only the retained messages of its own subscriptions.

    amqtt 0.12.1 walks every client's subscriptions when a client connects and sends it the retained messages
    matching any of them: a new gateway would receive every other gateway's retained status and director
    document. The check below keeps that walk to the subscriptions the session holds.
    """

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int], session) -> None:
        holders = self._subscriptions.get(subscription[0], [])
        if any(holder.client_id == session.client_id for holder, _qos in holders):
            await super()._publish_retained_messages_for_subscription(subscription, session)


class EmbeddedBroker:
    """An amqtt broker on ``127.0.0.1:port`` (a free port by default); ``start()``/``stop()`` or ``with``."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: _Broker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    def _config(self) -> dict:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{HOST}:{self.port}", "max_connections": 0}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        """Return once the broker accepts connections; raise ``RuntimeError`` if it could not start."""
        if self._thread is not None:
            raise RuntimeError("the embedded broker is already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._broker = _Broker(self._config(), loop=self._loop)
                self._loop.run_until_complete(self._broker.start())
            except BaseException as exc:  # reported to start(), which raises it in the caller's thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="embedded-broker", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or failure:
            why = failure[0] if failure else f"no answer within {timeout} s"
            self._close_loop()
            raise RuntimeError(f"the embedded MQTT broker could not start on {HOST}:{self.port}: {why}")
        log.info("embedded MQTT broker (amqtt) listening on %s", self.url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect every client and stop the loop; safe to call twice."""
        if self._loop is None:
            return
        if self._broker is not None and self._loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                future.result(timeout)
            except Exception:  # a broker that fails to shut down cleanly still gets its loop stopped
                log.warning("the embedded broker did not shut down cleanly", exc_info=True)
        self._close_loop(timeout)

    def _close_loop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout)
        if loop is not None and not loop.is_running():
            loop.close()
        self._loop = self._thread = self._broker = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
