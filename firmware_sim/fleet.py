"""A simulated fleet advancing six hours at a time: households, climate, faults, physics, sensors.

Both the training history and the live publisher run this, so a live fleet and a history with the
same seed and start report the same telemetry. Everything random comes from the seed: one stream
builds the fleet, another drives it block by block, so the same seed gives identical output. A
history splits a large fleet into shards of ``SHARD_HEATERS``, each with its own stream, so it can
simulate them in parallel and still get the same result with any number of processes. A
``WorldChange`` draws from a third stream of its own, so it leaves everything before it as it was and
gives the same result whether it was set at the start or injected while running. The ``field``
calibration (firmware_sim/calibration.py) draws its hazards and its sites' noise from a fourth pair of
streams, so the ``accelerated`` fleet stays exactly what it was; an ``AlertDispatch`` (preventive
replacement after an alert) draws from a fifth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from firmware_sim.calibration import DEFAULT_CALIBRATION, Calibration
from firmware_sim.climate import Climate
from firmware_sim.dispatch import AlertDispatch
from firmware_sim.faults import FailureEvent, FaultEffects, Faults
from firmware_sim.hazards import FieldHazards
from firmware_sim.households import Households
from firmware_sim.parameters import DEVICE_MODEL_SHARES, DEVICE_MODELS, SETPOINT_SHARES, SETPOINTS_F
from firmware_sim.physics import BlockControls, TankPhysics
from firmware_sim.sensors import read_sensors
from firmware_sim.site_noise import SiteNoise
from firmware_sim.world_change import WorldChange
from shared.features import BLOCK_SAMPLES, TelemetryWindow
from shared.messages import Component
from shared.telemetry import f_to_c

BLOCK_HOURS = BLOCK_SAMPLES // 60
SHARD_HEATERS = 250
MINUTES_PER_DAY = 24 * 60


@dataclass
class SimBlock:
    """Six hours of a fleet: readings at ``start`` + 1, 2, … 360 minutes."""

    start: datetime
    window: TelemetryWindow  # (n, 360) as the heaters report it
    eco_use: np.ndarray  # (n, 360) bool
    drawn_l_hourly: np.ndarray  # (n, 6) hot water actually drawn in each hour, L
    failures: list[FailureEvent]


def minute_floor(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("simulation start must carry a timezone (UTC)")
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def shard_seed(seed: int, shard: int) -> np.random.SeedSequence:
    """The random stream of one shard of a fleet: independent of how many shards there are."""
    return np.random.SeedSequence(seed, spawn_key=(0, shard))


class FleetSimulator:
    """``heaters`` heaters; a large fleet is several of these (shards), numbered from ``first_index``."""

    def __init__(
        self,
        heaters: int,
        seed: int,
        start: datetime,
        device_prefix: str,
        shard: int = 0,
        first_index: int = 0,
        change: WorldChange | None = None,
        calibration: Calibration = DEFAULT_CALIBRATION,
        dispatch: AlertDispatch | None = None,
    ):
        if heaters < 1:
            raise ValueError("a fleet needs at least one heater")
        self.start = minute_floor(start)
        build_seed, run_seed = shard_seed(seed, shard).spawn(2)
        build = np.random.default_rng(build_seed)
        self.rng = np.random.default_rng(run_seed)
        self.n = heaters
        self.device_ids = [f"{device_prefix}-{i:05d}" for i in range(first_index, first_index + heaters)]
        models = build.choice(len(DEVICE_MODELS), size=heaters, p=DEVICE_MODEL_SHARES)
        self.device_types = [DEVICE_MODELS[m].device_type for m in models]
        #: the types before a change fitted the new anode (``device_types`` holds the current ones)
        self.original_device_types = list(self.device_types)
        self._changed_device_types = self.original_device_types
        self._change_seed = np.random.SeedSequence(seed, spawn_key=(2, shard))
        self.change: WorldChange | None = None
        self.tank_l = np.array([DEVICE_MODELS[m].tank_l for m in models])
        self.setpoint_c = np.round(f_to_c(build.choice(SETPOINTS_F, size=heaters, p=SETPOINT_SHARES)), 1)
        self.households = Households(heaters, build, self.start)
        self.climate = Climate(heaters, build, self.households.utc_offset_h)
        self.calibration = calibration
        hazards, self.noise, ua_factor = None, None, None
        if calibration.realistic:
            field_build, field_run = np.random.SeedSequence(seed, spawn_key=(3, shard)).spawn(2)
            field = np.random.default_rng(field_build)
            self._field_rng = np.random.default_rng(field_run)
            hazards = FieldHazards(self.households.utc_offset_h, self.households.relative_usage(), field)
            age_y = hazards.age_years(Component.TANK_LEAK, np.arange(heaters), 0)
            self.noise = SiteNoise(heaters, self.setpoint_c, age_y, self.start, field)
            ua_factor = self.noise.ua_factor
        dispatch_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(4, shard)))
        self.faults = Faults(self.device_ids, self.start, build, hazards, dispatch, dispatch_rng)
        self.physics = TankPhysics(
            self.tank_l, self.setpoint_c, self.setpoint_c - build.uniform(0.0, 3.0, heaters), ua_factor=ua_factor
        )
        self.blocks_done = 0
        self._day_draws: np.ndarray | None = None
        if change is not None:
            self.set_change(change)

    @property
    def simulated_hours(self) -> int:
        """Hours from the start simulated so far: a change can start no earlier."""
        return self.blocks_done * BLOCK_HOURS

    def set_change(self, change: WorldChange) -> None:
        """Change the world from ``change.at_days`` on (one change per fleet, not in hours already simulated)."""
        if self.change is not None:
            raise ValueError("this fleet already has a world change")
        if change.at_hour < self.simulated_hours:
            raise ValueError(
                f"the change at day {change.at_days:g} is in the past: simulated up to day "
                f"{self.simulated_hours / 24:g} already"
            )
        rng = np.random.default_rng(self._change_seed)
        who = change.choose_heaters(self.n, rng)
        self.faults.fit_new_anode(who, change.at_hour, change, rng)
        self.change = change
        self._changed_device_types = list(self.original_device_types)
        for i in who:
            self._changed_device_types[i] += change.device_type_suffix

    @property
    def change_start(self) -> datetime | None:
        """The simulated moment the world change begins, if there is one."""
        return None if self.change is None else self.start + timedelta(hours=self.change.at_hour)

    def device_types_at(self, moment: datetime) -> list[str]:
        """Each heater's device type at ``moment``: the new anode's suffix from the change on."""
        if self.change is None or moment < self.change_start:
            return self.original_device_types
        return self._changed_device_types

    def next_block(self) -> SimBlock:
        """Simulate the next six hours."""
        block_start, controls, fx, failures = self.prepare_block()
        record = self.physics.run_block(controls)
        window = read_sensors(record, controls, fx, self.setpoint_c, self.rng)
        if self.noise is not None:
            self.noise.report(window, self.simulated_hours, self._field_rng)
        self.blocks_done += 1
        return SimBlock(
            start=block_start,
            window=window,
            eco_use=record.eco,
            drawn_l_hourly=controls.draw_l.reshape(self.n, BLOCK_HOURS, 60).sum(axis=2),
            failures=failures,
        )

    def prepare_block(self) -> tuple[datetime, BlockControls, FaultEffects, list[FailureEvent]]:
        """What drives the next block: draws, climate, and the faults (whose schedule it advances)."""
        first_minute = self.blocks_done * BLOCK_SAMPLES
        if first_minute % MINUTES_PER_DAY == 0:
            self._day_draws = self.households.day(first_minute // MINUTES_PER_DAY, self.rng)
            if self.noise is not None:
                self._day_draws = self.noise.day(self._day_draws, first_minute // MINUTES_PER_DAY, self._field_rng)
        if self.noise is not None:
            self.setpoint_c, self.physics.setpoint_c = self.noise.setpoints(self.households.away, self.simulated_hours)
        offset = first_minute % MINUTES_PER_DAY
        draws = self._day_draws[:, offset : offset + BLOCK_SAMPLES]
        block_start = self.start + timedelta(minutes=first_minute)
        inlet, ambient = self.climate.hourly(np.datetime64(block_start.replace(tzinfo=None), "h"), BLOCK_HOURS)
        if self.change is not None and self.simulated_hours + BLOCK_HOURS > self.change.at_hour:
            inlet = self.change.shift_inlet(inlet, self.simulated_hours)
            self.device_types = self.device_types_at(block_start + timedelta(hours=BLOCK_HOURS))
        fx, failures = self.faults.block(self.simulated_hours, BLOCK_HOURS, self.rng)
        if self.noise is not None:
            local_hour = (self.simulated_hours + np.arange(BLOCK_HOURS) + self.households.utc_offset_h[:, None]) % 24
            self.noise.effects(fx, self.simulated_hours, local_hour, self._field_rng)
        jitter = None
        chattering = np.flatnonzero(fx.jitter_sd_k.any(axis=1))
        if chattering.size:
            jitter = np.zeros(draws.shape)
            jitter[chattering] = np.repeat(fx.jitter_sd_k[chattering], 60, axis=1) * self.rng.standard_normal(
                (chattering.size, BLOCK_SAMPLES)
            )
        controls = BlockControls(
            draw_l=np.ascontiguousarray(draws),
            leak_l=fx.leak_l,
            inlet_c=inlet,
            ambient_c=ambient,
            upper_w=fx.upper_w,
            lower_w=fx.lower_w,
            lower_efficiency=fx.lower_efficiency,
            start_below_k=fx.start_below_k,
            stop_above_k=fx.stop_above_k,
            jitter_k=jitter,
            stuck_on=fx.stuck_on,
            heating_enabled=fx.heating_enabled,
            eco_reset=fx.eco_reset,
        )
        return block_start, controls, fx, failures
