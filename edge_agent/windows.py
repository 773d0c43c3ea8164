"""Rolling 24-hour telemetry windows per heater, kept as minute-slot ring buffers.

Each reading is written once into its heater's ring (one slot per minute of the day), so a
feature tick only gathers arrays instead of re-reading a day of readings per heater. The
placement rules are those of ``shared.features.window_from_readings`` — a reading sits on the
minute nearest its ``ts`` and a later ``seq`` for the same minute replaces an earlier one — and a
test holds the two to the same windows, so serving sees what training saw.

A ring keeps the measured fields as float32 (as ``TelemetryWindow`` does) and a reading's whole-number fields, its
error code and three element/sensor flags, packed exactly into one uint16 per minute: 14 bytes less a minute than four
float32s, 2.1 MB of a gateway's memory for 100 heaters. ``window`` unpacks them to the same 0/1 and code values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from shared.features import FEATURE_NAMES, WINDOW_FIELDS, WINDOW_SAMPLES, TelemetryWindow, compute_features
from shared.telemetry import Telemetry

#: minutes since the epoch fit int32 until 6053 (readings end at 2200, ``shared.limits.LATEST``): 0.6 MB less for
#: 100 heaters than int64. Sequence numbers (a counter may reach 2**53 - 1) are kept as int32 offsets from the
#: heater's first one, another 0.6 MB less, and a ring whose offsets outgrow int32 moves to int64 (exact either way)
_EMPTY = np.iinfo(np.int32).min
_INT32 = np.iinfo(np.int32)
#: boolean fields of ``Telemetry``, a bit each above the error code's bits
_FLAGS = ("heat_upper_use", "heat_lower_use", "wtr_ovr_sensor_use")
_CODE = "error_code"
#: error codes are 0..999 (``shared.telemetry.Telemetry``)
_CODE_BITS = 10
_MEASURED = tuple(name for name in WINDOW_FIELDS if name not in (*_FLAGS, _CODE))
#: where each kept field goes in a window's (fields, heaters, minutes) stack
_MEASURED_ROWS = np.array([WINDOW_FIELDS.index(name) for name in _MEASURED])
_CODE_ROW = WINDOW_FIELDS.index(_CODE)
_FLAG_ROWS = tuple(WINDOW_FIELDS.index(name) for name in _FLAGS)
#: heaters whose windows a feature tick gathers at once: a heater's window is 69 kB (12 fields × 1,440
#: minutes × float32) and its block statistics need a few times that; over 100 heaters at once a tick
#: raised the agent's peak memory by ~10 MB, in chunks of 10 by ~2 MB, for 32 ms instead of 18 ms a tick
#: (features are per heater, so chunks change no value)
FEATURE_CHUNK = 10


def minute_of(moment: datetime) -> int:
    """Whole minutes since the epoch, rounded to the nearest minute."""
    return round(moment.timestamp() / 60.0)


def floor_minute(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() // 60)


@dataclass(frozen=True)
class ReadingsSummary:
    """A heater's recent readings as a technician reads them: the last value and the range of each measure."""

    last_reading: datetime
    #: minutes with a reading in the span, of ``span_minutes``
    minutes_heard: int
    span_minutes: int
    #: measured field → (latest, lowest, highest) over the span
    measures: dict[str, tuple[float, float, float]]
    #: non-zero error codes seen in the span
    error_codes: list[int]


@dataclass
class _Ring:
    device_type: str
    #: (len(_MEASURED), capacity) values by minute slot
    values: np.ndarray
    #: error code and flags by minute slot (``_pack``)
    packed: np.ndarray
    #: the minute each slot holds, or _EMPTY
    minutes: np.ndarray
    #: each slot's reading's sequence number less ``seq_base`` (int32, or int64 once an offset does not fit)
    seqs: np.ndarray
    seq_base: int
    last_minute: int


def _pack(reading: Telemetry) -> int:
    """The error code in the low bits, then a bit per flag (``_FLAGS``' order)."""
    flags = sum(int(getattr(reading, name)) << bit for bit, name in enumerate(_FLAGS, start=_CODE_BITS))
    return reading.error_code | flags


class HeaterWindows:
    """The last day of readings of every heater that reported within it.

    Each ring holds ``slack_minutes`` more than a window, so a window may end that long before a
    heater's latest reading (a feature tick waits for stragglers) and still be complete.
    """

    def __init__(self, slack_minutes: int = 180) -> None:
        self.capacity = WINDOW_SAMPLES + slack_minutes
        self._rings: dict[str, _Ring] = {}

    def __len__(self) -> int:
        return len(self._rings)

    def add(self, reading: Telemetry) -> None:
        minute = minute_of(reading.ts)
        ring = self._rings.get(reading.device_id)
        if ring is None:
            ring = _Ring(
                device_type=reading.device_type,
                values=np.full((len(_MEASURED), self.capacity), np.nan, np.float32),
                packed=np.zeros(self.capacity, np.uint16),
                minutes=np.full(self.capacity, _EMPTY, np.int32),
                seqs=np.zeros(self.capacity, np.int32),
                seq_base=reading.seq,
                last_minute=minute,
            )
            self._rings[reading.device_id] = ring
        slot = minute % self.capacity
        seq = reading.seq - ring.seq_base
        if ring.seqs.dtype == np.int32 and not _INT32.min <= seq <= _INT32.max:
            ring.seqs = ring.seqs.astype(np.int64)
        if ring.minutes[slot] == minute and ring.seqs[slot] > seq:
            return  # an older duplicate of a minute we already hold
        if ring.minutes[slot] > minute:
            return  # older than what the ring holds
        ring.values[:, slot] = [float(getattr(reading, name)) for name in _MEASURED]
        ring.packed[slot] = _pack(reading)
        ring.minutes[slot] = minute
        ring.seqs[slot] = seq
        if minute >= ring.last_minute:
            ring.last_minute = minute
            ring.device_type = reading.device_type

    def heaters(self, end: datetime) -> list[tuple[str, str]]:
        """``(device_id, device_type)`` of heaters with a reading in the window ending at ``end``."""
        end_minute = floor_minute(end)
        return [
            (device_id, ring.device_type)
            for device_id, ring in sorted(self._rings.items())
            if ((ring.minutes > end_minute - WINDOW_SAMPLES) & (ring.minutes <= end_minute)).any()
        ]

    def window(self, device_ids: list[str], end: datetime) -> TelemetryWindow:
        """The 1,440 minutes ending at ``end`` (its minute included) for these heaters, NaN where missing."""
        end_minute = floor_minute(end)
        wanted = np.arange(end_minute - WINDOW_SAMPLES + 1, end_minute + 1, dtype=np.int64)
        slots = wanted % self.capacity
        stacked = np.full((len(WINDOW_FIELDS), len(device_ids), WINDOW_SAMPLES), np.nan, np.float32)
        for row, device_id in enumerate(device_ids):
            ring = self._rings[device_id]
            present = np.flatnonzero(ring.minutes[slots] == wanted)
            held = slots[present]
            heater = stacked[:, row, :]
            heater[_MEASURED_ROWS[:, None], present] = ring.values[:, held]
            packed = ring.packed[held]
            heater[_CODE_ROW, present] = packed & ((1 << _CODE_BITS) - 1)
            for bit, flag_row in enumerate(_FLAG_ROWS, start=_CODE_BITS):
                heater[flag_row, present] = (packed >> bit) & 1
        return TelemetryWindow(**{name: stacked[i] for i, name in enumerate(WINDOW_FIELDS)})

    def features(self, device_ids: list[str], end: datetime, chunk: int = FEATURE_CHUNK) -> np.ndarray:
        """``compute_features`` of these heaters' windows ending at ``end``, gathered ``chunk`` heaters at a time."""
        features = np.empty((len(device_ids), len(FEATURE_NAMES)), np.float32)
        for start in range(0, len(device_ids), chunk):
            features[start : start + chunk] = compute_features(self.window(device_ids[start : start + chunk], end))
        return features

    def summary(self, device_id: str, span_minutes: int = 60) -> ReadingsSummary | None:
        """The last ``span_minutes`` up to the heater's latest reading; None for a heater not heard from."""
        ring = self._rings.get(device_id)
        if ring is None:
            return None
        held = np.flatnonzero(ring.minutes > ring.last_minute - span_minutes)
        latest = int(np.flatnonzero(ring.minutes == ring.last_minute)[0])
        values = ring.values[:, held]
        measures = {
            name: (float(ring.values[row, latest]), float(np.nanmin(values[row])), float(np.nanmax(values[row])))
            for row, name in enumerate(_MEASURED)
            if np.isfinite(values[row]).any()
        }
        codes = np.unique(ring.packed[held] & ((1 << _CODE_BITS) - 1))
        return ReadingsSummary(
            last_reading=datetime.fromtimestamp(ring.last_minute * 60, UTC),
            minutes_heard=len(held),
            span_minutes=span_minutes,
            measures=measures,
            error_codes=[int(code) for code in codes if code],
        )

    def forget_before(self, moment: datetime) -> list[str]:
        """Drop heaters silent since before ``moment``; return their ids."""
        cutoff = floor_minute(moment)
        gone = [device_id for device_id, ring in self._rings.items() if ring.last_minute < cutoff]
        for device_id in gone:
            del self._rings[device_id]
        return gone
