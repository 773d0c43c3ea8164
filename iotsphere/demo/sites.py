"""The demo's gateways: one edge agent per gateway, each fed by a simulated site of heaters in accelerated time.

By default telemetry is fed into each agent in process (``EdgeAgent.run_in_process``) rather than over the
site topics: measured on this 2-core machine, the embedded broker (amqtt, pure Python) carries about 900 QoS 1
messages a second, while three sites of 25 heaters at 3600x make 4,500 readings a second. ``over_mqtt`` sends
it on ``site/{gateway}/heaters/{device}/telemetry`` instead, for a broker (and a speed) that can carry it.
Everything between gateway and cloud (status, features, predictions, events, director documents) goes over
MQTT either way, and models over HTTP + TUF.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig
from firmware_sim.live import Fleet, connect
from shared.topics import telemetry_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatewaySpec:
    gateway_id: str
    data_dir: Path
    api_key: str


class Site:
    """A gateway's edge agent and its heaters; ``start()`` runs the heaters at ``speed`` in a thread."""

    def __init__(
        self,
        spec: GatewaySpec,
        heaters: int,
        seed: int,
        start: datetime,
        speed: float,
        mqtt_url: str,
        cloud_url: str,
        trusted_root: Path,
        prefix: str,
        over_mqtt: bool = False,
        mqtt_ca: Path | None = None,
    ):
        self.gateway_id = spec.gateway_id
        self.speed = speed
        self.mqtt_url = mqtt_url if over_mqtt else None
        self.fleet = Fleet(spec.gateway_id, heaters, seed=seed, start=start)
        self.agent = EdgeAgent(
            AgentConfig(
                gateway_id=spec.gateway_id,
                data_dir=spec.data_dir,
                mqtt_url=mqtt_url,
                mqtt_ca=mqtt_ca,
                cloud_url=cloud_url,
                api_key=spec.api_key,
                trusted_root=trusted_root,
                prefix=prefix,
                status_interval=2.0,
                update_retry=timedelta(seconds=2),
            )
        )
        self.readings = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def now(self) -> datetime:
        """Simulated time of the last reading fed."""
        return self.fleet.now

    def active_versions(self) -> dict[str, dict[str, str | None]]:
        """Per model name: the version this agent serves and its state (probation, committed, ...)."""
        return {s.model_name: {"version": s.active_version, "state": s.state} for s in self.agent.store.states()}

    def start(self) -> None:
        self.agent.start()
        self._thread = threading.Thread(target=self._feed, name=f"site-{self.gateway_id}", daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        """One simulated minute of every heater at a time, paced to ``speed`` (which may change while it runs);
        if the CPU falls behind, it lags."""
        client = connect(self.mqtt_url, f"demo-site-{self.gateway_id}") if self.mqtt_url else None
        due = time.monotonic()
        try:
            while not self._stop.is_set():
                readings = self.fleet.step()
                if client is None:
                    self.agent.run_in_process(readings)
                else:
                    for reading in readings:  # QoS 1, as the heaters' firmware sends it
                        client.publish(telemetry_topic(self.gateway_id, reading.device_id), reading.to_json(), qos=1)
                self.readings += len(readings)
                due = max(due + 60.0 / self.speed, time.monotonic() - 1.0)  # a lag is not made up in a burst
                self._stop.wait(max(0.0, due - time.monotonic()))
        finally:
            if client is not None:
                client.disconnect()
                client.loop_stop()

    def stop_heaters(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def stop(self) -> int:
        """Heaters first, then the agent (which drains its outbox briefly); return what its outbox still holds."""
        self.stop_heaters()
        return self.agent.stop(drain_seconds=5.0)
