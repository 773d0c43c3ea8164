"""Hot-water draws of each heater's household, one simulated day at a time, vectorised over the fleet.

A household has a size, a usage intensity, its own wake-up and evening times (later at weekends),
a UTC offset, and sometimes goes away for a few days. Each day it draws a Poisson number of
showers, sink uses, kitchen uses, appliance fills and baths; each event gets a time from its kind's
daily profile (morning and evening peaks, meals), a duration and a flow. Volumes are hot water at
the tank outlet (the hot share of mixed water).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

#: US household sizes 1..5+
OCCUPANT_SHARES = (0.28, 0.35, 0.15, 0.13, 0.09)
UTC_OFFSETS_H = (-5, -6, -7, -8)
MAX_FLOW_L_PER_MIN = 40.0


@dataclass(frozen=True)
class DrawKind:
    name: str
    per_person: float  # events per person per day
    per_household: float  # events per household per day
    flow: tuple[float, float]  # L/min mean, sd
    minutes: tuple[float, float]  # duration mean, sd
    #: daily profile: (anchor, hour offset, sd in hours, weight); anchor "wake", "evening" or "clock"
    profile: tuple[tuple[str, float, float, float], ...]


DRAW_KINDS = (
    DrawKind("shower", 0.75, 0.0, (7.5, 1.2), (7.0, 2.5), (("wake", 0.5, 0.6, 0.65), ("evening", 2.5, 1.0, 0.35))),
    DrawKind(
        "sink",
        5.0,
        0.0,
        (2.5, 0.8),
        (1.0, 0.5),
        (("wake", 0.5, 1.0, 0.3), ("clock", 12.5, 2.5, 0.3), ("evening", 0.0, 1.5, 0.4)),
    ),
    DrawKind(
        "kitchen",
        0.5,
        2.5,
        (4.0, 1.0),
        (2.0, 1.0),
        (("wake", 1.0, 0.5, 0.3), ("clock", 12.5, 1.0, 0.2), ("evening", 0.5, 0.7, 0.5)),
    ),
    DrawKind("appliance", 0.15, 0.4, (6.0, 1.0), (4.0, 1.5), (("clock", 14.0, 3.0, 1.0),)),
    DrawKind("bath", 0.0, 0.0, (12.0, 2.0), (8.0, 2.0), (("evening", 1.0, 1.0, 1.0),)),
)
#: baths only in households of three or more
BATHS_PER_DAY_FAMILY = 0.25
#: the typical household: US mean size, and the share of households of three or more
TYPICAL_OCCUPANTS = 2.5
FAMILY_SHARE = sum(OCCUPANT_SHARES[2:])


class Households:
    def __init__(self, n: int, rng: np.random.Generator, start: datetime):
        self.n = n
        self.occupants = rng.choice(np.arange(1, 6), size=n, p=OCCUPANT_SHARES)
        self.intensity = rng.lognormal(0.0, 0.3, n)
        self.wake_h = rng.normal(6.5, 0.8, n)
        self.weekend_delay_h = rng.uniform(0.5, 2.5, n)
        self.evening_h = rng.normal(19.0, 1.0, n)
        self.utc_offset_h = rng.choice(UTC_OFFSETS_H, size=n)
        self.leave_per_day = rng.uniform(0.003, 0.02, n)
        self.stay_away = 0.8
        self.away = np.zeros(n, bool)
        self.rates = (
            np.stack([k.per_person * self.occupants + k.per_household for k in DRAW_KINDS], axis=1)
            * self.intensity[:, None]
        )
        self.rates[:, [k.name for k in DRAW_KINDS].index("bath")] = np.where(
            self.occupants >= 3, BATHS_PER_DAY_FAMILY, 0.0
        )
        self._start = np.datetime64(start.replace(tzinfo=None), "m")

    def relative_usage(self) -> np.ndarray:
        """Each household's expected hot water a day over that of a typical one (2.5 people, intensity 1)."""
        litres = np.array([k.flow[0] * k.minutes[0] for k in DRAW_KINDS])
        typical = np.array([k.per_person * TYPICAL_OCCUPANTS + k.per_household for k in DRAW_KINDS])
        typical[[k.name for k in DRAW_KINDS].index("bath")] = BATHS_PER_DAY_FAMILY * FAMILY_SHARE
        return (self.rates @ litres) / (typical @ litres)

    def day(self, day_index: int, rng: np.random.Generator) -> np.ndarray:
        """Draws of simulated day ``day_index`` (the 1,440 minutes from start + day_index days), L per
        minute, shape (n, 1440)."""
        n = self.n
        self.away = np.where(self.away, rng.random(n) < self.stay_away, rng.random(n) < self.leave_per_day)
        day_start = self._start + np.timedelta64(day_index * 1440, "m")
        local_start = day_start + (self.utc_offset_h * 60).astype("timedelta64[m]")
        local_start_minute = (local_start - local_start.astype("datetime64[D]")).astype(np.int64)
        # weekday of the local date at the middle of the simulated day (1970-01-01 was a Thursday)
        local_mid_day = ((local_start + np.timedelta64(720, "m")).astype("datetime64[D]").astype(np.int64) + 3) % 7
        weekend = local_mid_day >= 5
        wake = self.wake_h + np.where(weekend, self.weekend_delay_h, 0.0)
        anchors = {"wake": wake, "evening": self.evening_h, "clock": np.zeros(n)}

        counts = rng.poisson(self.rates * np.where(self.away, 0.0, np.where(weekend, 1.1, 1.0))[:, None])
        heaters, starts, flows, durations = [], [], [], []
        for k, kind in enumerate(DRAW_KINDS):
            who = np.repeat(np.arange(n), counts[:, k])
            if who.size == 0:
                continue
            weights = np.array([p[3] for p in kind.profile])
            part = np.searchsorted(np.cumsum(weights) / weights.sum(), rng.random(who.size), side="right")
            anchor = np.zeros(who.size)
            for j, (name, offset, _, _) in enumerate(kind.profile):
                chosen = part == j
                anchor[chosen] = anchors[name][who[chosen]] + offset
            spread = np.array([p[2] for p in kind.profile])[part]
            hour = anchor + spread * rng.standard_normal(who.size)
            heaters.append(who)
            starts.append(np.round(hour * 60.0).astype(np.int64) % 1440)
            flows.append(np.clip(rng.normal(*kind.flow, who.size), 0.8, 20.0))
            durations.append(np.clip(rng.normal(*kind.minutes, who.size), 0.25, 30.0))
        draws = np.zeros(n * 1440)
        if heaters:
            self._spread(draws, *(np.concatenate(x) for x in (heaters, starts, flows, durations)), local_start_minute)
        return np.minimum(draws.reshape(n, 1440), MAX_FLOW_L_PER_MIN)

    @staticmethod
    def _spread(
        out: np.ndarray,
        heater: np.ndarray,
        local_minute: np.ndarray,
        flow: np.ndarray,
        duration: np.ndarray,
        local_start_minute: np.ndarray,
    ) -> None:
        """Add each event's flow to the minutes it covers (the last one partly); drop what runs past the day."""
        whole = np.ceil(duration).astype(np.int64)
        event = np.repeat(np.arange(heater.size), whole)
        first = np.cumsum(whole) - whole
        step = np.arange(event.size) - first[event]
        position = (local_minute[event] - local_start_minute[heater[event]]) % 1440 + step
        share = np.minimum(duration[event] - step, 1.0)
        keep = position < 1440
        index = heater[event[keep]] * 1440 + position[keep]
        out += np.bincount(index, weights=(flow[event] * share)[keep], minlength=out.size)
