"""One heater reading, as a connected heater publishes it once a minute to its gateway.

Field names follow the Navien NWP500 NaviLink status (``dhwTemperature`` → ``dhw_temperature``),
the richest public integration. Units are SI, not the °F / GPM / gallons that US clients show:
NaviLink itself encodes temperatures as half- or tenth-°C integers, and the features, labels and
models all work in °C, litres and watts. docs/telemetry.md maps every real field to ours.

Parsing is strict (unknown fields, non-finite numbers and values outside what the sensors can
report are refused) so the edge agent can reject garbage instead of learning from it.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.limits import SafeCount
from shared.messages import Component, Identifier, UtcDatetime, new_msg_id

TELEMETRY_SCHEMA = 1
#: A reading is a few hundred bytes; anything far bigger is not one.
MAX_TELEMETRY_BYTES = 4096

#: What a tank thermistor channel can report (°C). A failed sensor sits on a rail inside this range
#: (open circuit reads cold, short reads hot); a value outside it is not a reading at all.
SENSOR_MIN_C = -40.0
SENSOR_MAX_C = 130.0
#: Setpoint range of the NWP500: 95–150 °F.
SETPOINT_MIN_C = 35.0
SETPOINT_MAX_C = 65.6
MAX_FLOW_L_PER_MIN = 60.0
#: Both elements (2 × 5,148 W) with margin; a heat-pump compressor adds far less.
MAX_POWER_W = 12_000.0


def f_to_c(fahrenheit: float) -> float:
    return (fahrenheit - 32.0) * 5.0 / 9.0


def c_to_f(celsius: float) -> float:
    return celsius * 9.0 / 5.0 + 32.0


class OperationMode(IntEnum):
    """NaviLink ``operationMode``: what the unit is doing right now."""

    STANDBY = 0
    HEAT_PUMP = 32
    HYBRID_EFFICIENCY = 64
    HYBRID_BOOST = 96


class DhwOperationSetting(IntEnum):
    """NaviLink ``dhwOperationSetting``: the mode the owner chose."""

    HEAT_PUMP = 1
    ELECTRIC = 2
    ENERGY_SAVER = 3
    HIGH_DEMAND = 4
    VACATION = 5
    POWER_OFF = 6


class ErrorCode(IntEnum):
    """NaviLink ``errorCode`` values (shown as ``E096`` etc.); 0 means no error."""

    NONE = 0
    UPPER_ELEMENT = 96
    LOWER_ELEMENT = 97
    DRY_FIRE = 326
    DHW_SENSOR = 407
    MIXING_VALVE = 445
    UPPER_TANK_SENSOR = 480
    LOWER_TANK_SENSOR = 481
    SHUT_OFF_VALVE = 798
    LEAK = 799
    ECO_HIGH_LIMIT = 901
    COMPRESSOR = 907
    COMPRESSOR_DISCHARGE = 908
    EVAPORATOR_FAN = 909
    CONDENSATE_OVERFLOW = 990


#: Which component each error code points at; codes not listed here count as "other".
ERROR_FAMILIES: dict[Component, frozenset[int]] = {
    Component.HEATING_ELEMENT: frozenset({ErrorCode.UPPER_ELEMENT, ErrorCode.LOWER_ELEMENT}),
    Component.THERMOSTAT: frozenset({ErrorCode.ECO_HIGH_LIMIT}),
    Component.SEDIMENT: frozenset({ErrorCode.DRY_FIRE}),
    Component.TANK_LEAK: frozenset({ErrorCode.LEAK, ErrorCode.SHUT_OFF_VALVE}),
    Component.SENSOR: frozenset({ErrorCode.DHW_SENSOR, ErrorCode.UPPER_TANK_SENSOR, ErrorCode.LOWER_TANK_SENSOR}),
}


def _temperature(description: str):
    return Field(ge=SENSOR_MIN_C, le=SENSOR_MAX_C, description=f"{description}, °C")


class Telemetry(BaseModel):
    """A reading describes the minute that ends at ``ts``: temperatures are the values at ``ts``,
    flow and power the means over that minute, element flags whether the element was energised in it."""

    # strings (ids, message ids, times) are not cached: every reading has a new msg_id and ts, so pydantic-core's
    # cache of 16,384 strings would only hold the last ones, ~1.3 MB of a gateway's memory for no hits
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, strict=True, allow_inf_nan=False, cache_strings="keys"
    )

    schema_version: Literal[1] = Field(TELEMETRY_SCHEMA, alias="schema")
    msg_id: str = Field(default_factory=new_msg_id, min_length=8, max_length=64)
    #: per-device counter, +1 per reading: gaps show lost readings, repeats show duplicates
    seq: SafeCount
    device_id: Identifier
    device_type: Identifier
    ts: UtcDatetime

    operation_mode: OperationMode
    dhw_operation_setting: DhwOperationSetting
    dhw_temperature: float = _temperature("outlet (hot water) temperature")
    dhw_temperature_setting: float = Field(ge=SETPOINT_MIN_C, le=SETPOINT_MAX_C, description="setpoint, °C")
    tank_upper_temperature: float = _temperature("upper tank sensor")
    tank_lower_temperature: float = _temperature("lower tank sensor")
    current_inlet_temperature: float = _temperature("cold inlet water")
    ambient_temperature: float = _temperature("air around the heater")
    current_dhw_flow_rate: float = Field(ge=0.0, le=MAX_FLOW_L_PER_MIN, description="mean flow over the minute, L/min")
    cumulated_dhw_flow_rate: float = Field(ge=0.0, le=1e9, description="water through the heater since install, L")
    heat_upper_use: bool
    heat_lower_use: bool
    current_inst_power: float = Field(ge=0.0, le=MAX_POWER_W, description="mean electric power over the minute, W")
    dhw_charge_per: float = Field(ge=0.0, le=100.0, description="share of the tank's useful heat available, %")
    eco_use: bool
    wtr_ovr_sensor_use: bool
    error_code: int = Field(ge=0, le=999)
    wifi_rssi: int = Field(ge=-127, le=0, description="Wi-Fi signal, dBm")

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode("utf-8")


def parse_telemetry(payload: bytes) -> Telemetry:
    """Validate one reading; raise ValueError (pydantic's ValidationError is one) on anything malformed."""
    if len(payload) > MAX_TELEMETRY_BYTES:
        raise ValueError(f"telemetry payload of {len(payload)} bytes exceeds {MAX_TELEMETRY_BYTES}")
    return Telemetry.model_validate_json(payload)
