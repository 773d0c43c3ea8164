"""A gateway's heaters live: one reading per heater per simulated minute, in-process or over MQTT.

``Fleet`` steps the same simulator the history uses and turns each minute into validated
``Telemetry`` readings; ``publish`` sends them on ``site/{gateway}/heaters/{device}/telemetry``
(QoS 1) in accelerated time: ``speed`` simulated seconds per real second. A ``WorldChange`` can be
given at the start or injected while the fleet runs (``inject_change``, from any thread).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import paho.mqtt.client as mqtt

from firmware_sim.calibration import DEFAULT_CALIBRATION, Calibration
from firmware_sim.faults import FailureEvent
from firmware_sim.fleet import FleetSimulator, SimBlock
from firmware_sim.parameters import LOWER_ZONE_SHARE, REPORTED_DECIMALS, UPPER_ZONE_SHARE
from firmware_sim.world_change import WorldChange
from shared.features import BLOCK_SAMPLES, WINDOW_FIELDS
from shared.mqtt_url import apply_endpoint, parse_mqtt_url
from shared.telemetry import DhwOperationSetting, OperationMode, Telemetry
from shared.topics import telemetry_topic, validate_id

log = logging.getLogger(__name__)

_BOOL_FIELDS = {"heat_upper_use", "heat_lower_use", "wtr_ovr_sensor_use"}


class Fleet:
    """The heaters of one gateway in simulated time, starting at ``start`` (default: now)."""

    def __init__(
        self,
        gateway_id: str,
        heaters: int,
        seed: int = 0,
        start: datetime | None = None,
        change: WorldChange | None = None,
        calibration: Calibration = DEFAULT_CALIBRATION,
    ):
        self.gateway_id = validate_id(gateway_id, "gateway id")
        #: the simulation underneath, e.g. to schedule a fault for a demo (``simulator.faults.schedule_failure``)
        self.simulator = FleetSimulator(
            heaters,
            seed,
            start or datetime.now(UTC),
            device_prefix=gateway_id[:56],
            change=change,
            calibration=calibration,
        )
        self._lock = threading.Lock()  # a change may be injected from another thread than the one stepping
        validate_id(self.simulator.device_ids[-1], "device id")
        extras = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
        self._rssi_dbm = extras.integers(-82, -45, heaters)
        self._extras = extras
        self._cumulated_l = extras.uniform(2e4, 6e5, heaters)
        self._zone_kg = (self.simulator.tank_l * UPPER_ZONE_SHARE, self.simulator.tank_l * LOWER_ZONE_SHARE)
        self._block: SimBlock | None = None
        self._minute = BLOCK_SAMPLES
        self._seq = 0
        self._failures: list[FailureEvent] = []  # simulated up to six hours ahead of now

    @property
    def device_ids(self) -> list[str]:
        return self.simulator.device_ids

    @property
    def failures(self) -> list[FailureEvent]:
        """Ground-truth failures that the readings returned so far already show."""
        return [f for f in self._failures if f.failed_at < self.now]

    @property
    def earliest_change_day(self) -> float:
        """The first day (from the start) a change can still begin: the simulation runs up to six hours ahead."""
        with self._lock:
            return self.simulator.simulated_hours / 24

    def inject_change(self, change: WorldChange) -> datetime:
        """Change the world from ``change.at_days`` on (not before ``earliest_change_day``); return when it
        begins. The result is the same as giving ``change`` when the fleet was made."""
        with self._lock:
            self.simulator.set_change(change)
        return self.simulator.change_start

    @property
    def now(self) -> datetime:
        """Simulated time of the last reading returned."""
        return self.simulator.start + timedelta(minutes=self._seq)

    def step(self) -> list[Telemetry]:
        """The next simulated minute: one reading per heater (field calibration: none from a heater whose link is
        down, two of one the link delivers twice)."""
        if self._minute == BLOCK_SAMPLES:
            with self._lock:
                self._block = self.simulator.next_block()
            self._failures += self._block.failures
            self._minute = 0
        block, j = self._block, self._minute
        self._minute += 1
        self._seq += 1
        ts = block.start + timedelta(minutes=j + 1)
        device_types = self.simulator.device_types_at(ts)
        column = {name: getattr(block.window, name)[:, j] for name in WINDOW_FIELDS}
        self._cumulated_l += np.nan_to_num(column["current_dhw_flow_rate"])  # a link drop-out leaves the meter be
        charge = self._charge_percent(column)
        heating = (column["heat_upper_use"] > 0) | (column["heat_lower_use"] > 0)
        rssi = self._rssi_dbm + self._extras.integers(-3, 4, len(self._rssi_dbm))
        # plain Python values, converted once per minute: indexing numpy arrays per heater and field cost more
        # than the rest of the step
        reported = {name: column[name].tolist() for name in REPORTED_DECIMALS}
        flags = {name: column[name].tolist() for name in _BOOL_FIELDS}
        errors, cumulated, charges = column["error_code"].tolist(), self._cumulated_l.tolist(), charge.tolist()
        heatings, rssis, eco = heating.tolist(), rssi.tolist(), block.eco_use[:, j].tolist()
        readings = []
        noise = self.simulator.noise
        if noise is not None:
            present = np.isfinite(column["tank_upper_temperature"])
            twice = set(np.flatnonzero(noise.duplicated(self.simulator.n, self._extras) & present).tolist())
        for i, device_id in enumerate(self.simulator.device_ids):
            if noise is not None and not present[i]:
                continue
            values = {name: round(reported[name][i], decimals) for name, decimals in REPORTED_DECIMALS.items()}
            values |= {name: bool(flags[name][i]) for name in _BOOL_FIELDS}
            values["error_code"] = int(errors[i])
            readings.append(
                Telemetry(
                    seq=self._seq,
                    device_id=device_id,
                    device_type=device_types[i],
                    ts=ts,
                    operation_mode=OperationMode.HYBRID_BOOST if heatings[i] else OperationMode.STANDBY,
                    dhw_operation_setting=DhwOperationSetting.ELECTRIC,
                    cumulated_dhw_flow_rate=round(cumulated[i], 2),
                    dhw_charge_per=float(charges[i]),
                    eco_use=bool(eco[i]),
                    wifi_rssi=int(rssis[i]),
                    **values,
                )
            )
            if noise is not None and i in twice:
                readings.append(readings[-1])
        return readings

    def _charge_percent(self, column: dict[str, np.ndarray]) -> np.ndarray:
        """The controller's estimate of usable heat left, from its own sensors (so a bad sensor skews it)."""
        upper_kg, lower_kg = self._zone_kg
        inlet = column["current_inlet_temperature"]
        span = np.maximum(column["dhw_temperature_setting"] - inlet, 1.0)
        stored = upper_kg * (column["tank_upper_temperature"] - inlet) + lower_kg * (
            column["tank_lower_temperature"] - inlet
        )
        return np.round(np.clip(100.0 * stored / ((upper_kg + lower_kg) * span), 0.0, 100.0), 1)

    def __iter__(self) -> Iterator[list[Telemetry]]:
        while True:
            yield self.step()


@dataclass
class PublishStats:
    minutes: int = 0
    published: int = 0
    failed: int = 0
    lag_s: float = 0.0  # how far behind real time the last minute went out
    failures: list[FailureEvent] = field(default_factory=list)


def connect(mqtt_url: str, client_id: str) -> mqtt.Client:
    """A connected paho client (MQTT 3.1.1, network loop running)."""
    endpoint = parse_mqtt_url(mqtt_url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    apply_endpoint(client, endpoint)
    client.max_inflight_messages_set(500)
    client.connect(endpoint.host, endpoint.port, keepalive=30)
    client.loop_start()
    return client


def publish(
    fleet: Fleet,
    mqtt_url: str,
    speed: float,
    duration_s: float | None = None,
    minutes: int | None = None,
    topic_root: str = "",
    on_minute: Callable[[list[Telemetry]], None] | None = None,
) -> PublishStats:
    """Publish the fleet's readings until ``duration_s`` real seconds or ``minutes`` simulated minutes
    have passed (whichever comes first; neither = forever). ``topic_root`` is prepended to the site
    topic for isolated runs on a shared broker; the edge agent listens without one."""
    if speed <= 0:
        raise ValueError("speed must be positive (simulated seconds per real second)")
    client = connect(mqtt_url, f"sim-{fleet.gateway_id[:40]}-{uuid.uuid4().hex[:8]}")
    stats = PublishStats()
    began = time.monotonic()
    pending: list[mqtt.MQTTMessageInfo] = []
    try:
        while (minutes is None or stats.minutes < minutes) and (
            duration_s is None or time.monotonic() - began < duration_s
        ):
            readings = fleet.step()
            for reading in readings:
                topic = telemetry_topic(fleet.gateway_id, reading.device_id)
                info = client.publish(f"{topic_root}/{topic}" if topic_root else topic, reading.to_json(), qos=1)
                if info.rc == mqtt.MQTT_ERR_SUCCESS:
                    pending.append(info)
                    stats.published += 1
                else:
                    stats.failed += 1
            stats.minutes += 1
            if on_minute is not None:
                on_minute(readings)
            due = began + stats.minutes * 60.0 / speed
            stats.lag_s = max(0.0, time.monotonic() - due)
            time.sleep(max(0.0, due - time.monotonic()))
            pending = [info for info in pending if not info.is_published()]
        for info in pending:
            info.wait_for_publish(timeout=10)
            if not info.is_published():
                stats.failed += 1
    finally:
        client.disconnect()
        client.loop_stop()
    stats.failures = list(fleet.failures)
    log.info("published %d readings over %d simulated minutes", stats.published, stats.minutes)
    return stats
