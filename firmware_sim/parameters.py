"""Physical parameters of the simulated heater, from the public NWP500 fit (docs/telemetry.md), in SI.

The reference fit is of one NWP500-65 on 240 V: tank 63.2 gal, UA 4.48 BTU/h·°F, bottom loss
91 BTU/h, stratification time constant 26.7 h, a 5,148 W element that heats the upper zone at
2.01 °F/min and the lower at 1.38 °F/min, upper element re-engaging 4.1 °F below setpoint, and a
330 s restart lockout. The zone masses follow from the heating rates (m = P / (c · rate)); the water
below the lower element (about a third of the tank) stays near inlet temperature and is not a zone.
Other tank sizes keep the zone shares; UA scales with tank surface (volume^2/3).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.telemetry import f_to_c

GALLON_L = 3.785411784
WATER_J_PER_KG_K = 4186.0
#: 1 °F difference in kelvin
F_DELTA_K = 5.0 / 9.0
BTU_PER_H_IN_W = 0.29307107


@dataclass(frozen=True)
class DeviceModel:
    device_type: str
    tank_gal: float

    @property
    def tank_l(self) -> float:
        return self.tank_gal * GALLON_L


DEVICE_MODELS = (DeviceModel("nwp500-50", 45.2), DeviceModel("nwp500-65", 63.2), DeviceModel("nwp500-80", 76.1))
#: share of each model in a fleet
DEVICE_MODEL_SHARES = (0.3, 0.45, 0.25)
REFERENCE_TANK_L = 63.2 * GALLON_L

ELEMENT_W = 5148.0
UPPER_RATE_K_PER_MIN = 2.01 * F_DELTA_K
LOWER_RATE_K_PER_MIN = 1.38 * F_DELTA_K
#: heated water mass per litre of tank, per zone
UPPER_ZONE_SHARE = ELEMENT_W * 60.0 / (WATER_J_PER_KG_K * UPPER_RATE_K_PER_MIN) / REFERENCE_TANK_L
LOWER_ZONE_SHARE = ELEMENT_W * 60.0 / (WATER_J_PER_KG_K * LOWER_RATE_K_PER_MIN) / REFERENCE_TANK_L

REFERENCE_UA_W_PER_K = 4.48 * BTU_PER_H_IN_W / F_DELTA_K
BOTTOM_LOSS_W = 91.0 * BTU_PER_H_IN_W
STRATIFICATION_TAU_MIN = 26.7 * 60.0
REENGAGE_BELOW_K = 4.1 * F_DELTA_K
LOCKOUT_MIN = 330.0 / 60.0
#: energy cut-off (ECO) high limit: the usual 170 °F of tank heaters (not in the fit)
ECO_LIMIT_C = f_to_c(170.0)
#: owners' setpoints in °F and how common each is (120 °F is the default)
SETPOINTS_F = (115.0, 120.0, 125.0, 130.0, 140.0)
SETPOINT_SHARES = (0.1, 0.55, 0.15, 0.12, 0.08)
#: the outlet sensor sits just above the tank top, a little cooler
OUTLET_DROP_K = 0.4
#: healthy tank-sensor noise (standard deviation)
SENSOR_NOISE_C = 0.05
#: decimals each reported number carries: tenths of °C as NaviLink, flow to 0.01 L/min, whole watts
REPORTED_DECIMALS = {
    "dhw_temperature": 1,
    "dhw_temperature_setting": 1,
    "tank_upper_temperature": 1,
    "tank_lower_temperature": 1,
    "current_inlet_temperature": 1,
    "ambient_temperature": 1,
    "current_dhw_flow_rate": 2,
    "current_inst_power": 0,
}
