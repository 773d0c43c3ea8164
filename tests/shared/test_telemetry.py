"""The telemetry model accepts real readings and refuses garbage with a clear error."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.telemetry import (
    ERROR_FAMILIES,
    MAX_TELEMETRY_BYTES,
    DhwOperationSetting,
    ErrorCode,
    OperationMode,
    Telemetry,
    c_to_f,
    f_to_c,
    parse_telemetry,
)


def reading(**changes) -> Telemetry:
    values = dict(
        seq=7,
        device_id="gw1-00001",
        device_type="nwp500-65",
        ts=datetime(2026, 1, 31, 6, 0, tzinfo=UTC),
        operation_mode=OperationMode.STANDBY,
        dhw_operation_setting=DhwOperationSetting.ELECTRIC,
        dhw_temperature=48.5,
        dhw_temperature_setting=48.9,
        tank_upper_temperature=48.9,
        tank_lower_temperature=45.2,
        current_inlet_temperature=11.3,
        ambient_temperature=18.0,
        current_dhw_flow_rate=0.0,
        cumulated_dhw_flow_rate=123456.7,
        heat_upper_use=False,
        heat_lower_use=True,
        current_inst_power=5148.0,
        dhw_charge_per=87.5,
        eco_use=False,
        wtr_ovr_sensor_use=False,
        error_code=0,
        wifi_rssi=-61,
    )
    values.update(changes)
    return Telemetry(**values)


def payload_with(**changes) -> bytes:
    document = json.loads(reading().to_json())
    document.update(changes)
    return json.dumps(document).encode()


def test_round_trip_keeps_every_field():
    original = reading(error_code=ErrorCode.LOWER_ELEMENT)
    parsed = parse_telemetry(original.to_json())
    assert parsed == original
    assert json.loads(original.to_json())["schema"] == 1


def test_unknown_but_plausible_error_code_is_accepted():
    assert parse_telemetry(payload_with(error_code=517)).error_code == 517


@pytest.mark.parametrize(
    "changes",
    [
        {"tank_upper_temperature": float("nan")},
        {"tank_lower_temperature": float("inf")},
        {"tank_upper_temperature": 500.0},
        {"ambient_temperature": -80.0},
        {"dhw_temperature_setting": 80.0},
        {"current_dhw_flow_rate": -1.0},
        {"current_inst_power": 50_000.0},
        {"tank_upper_temperature": "48.9"},
        {"heat_upper_use": 1},
        {"error_code": 1.5},
        {"error_code": 4242},
        {"operation_mode": 5},
        {"wifi_rssi": 12},
        {"device_id": "gw1/heater"},
        {"ts": "2026-01-31T06:00:00"},
        {"seq": -1},
        {"seq": 2**53},  # beyond what every JSON reader keeps exact
        {"ts": "0001-01-01T00:00:00+01:00"},  # raised OverflowError, no ValueError, moving it to UTC
        {"ts": "9999-12-31T23:59:59-14:00"},
        {"ts": "1969-12-31T23:59:59Z"},
        {"firmware": "1.2.3"},
        {"schema": 2},
    ],
)
def test_garbage_is_rejected(changes):
    with pytest.raises(ValueError):
        parse_telemetry(payload_with(**changes))


def test_missing_field_and_non_json_are_rejected():
    document = json.loads(reading().to_json())
    del document["tank_lower_temperature"]
    with pytest.raises(ValueError, match="tank_lower_temperature"):
        parse_telemetry(json.dumps(document).encode())
    with pytest.raises(ValueError):
        parse_telemetry(b"\x00not json")


def test_oversized_payload_is_rejected_before_parsing():
    with pytest.raises(ValueError, match="exceeds"):
        parse_telemetry(b" " * (MAX_TELEMETRY_BYTES + 1))


def test_temperature_conversions_and_error_families():
    assert f_to_c(120.0) == pytest.approx(48.889, abs=1e-3)
    assert c_to_f(f_to_c(150.0)) == pytest.approx(150.0)
    codes = [code for family in ERROR_FAMILIES.values() for code in family]
    assert len(codes) == len(set(codes)), "an error code belongs to one family"
