"""Which arm of a split A/B test a heater is on: the same answer on the edge and in the cloud, offline too.

A heater's bucket is ``SHA-256(experiment_id + "/" + device_id)`` (UTF-8), its first 8 bytes read as a big-endian
unsigned integer, modulo 100; buckets ``0 .. challenger_percent - 1`` run the challenger. So:
- the assignment needs nothing but the two ids, so a gateway keeps it across restarts and without a link;
- a heater keeps its arm for the whole experiment, and raising the percentage only moves heaters onto the
  challenger (buckets below the old share stay below the new one);
- a new experiment id reshuffles heaters, so one experiment's arm does not carry into the next.
The separator keeps ``("ab", "c")`` and ``("a", "bc")`` apart. In shadow mode every heater runs both models and
this function is not used.
"""

from __future__ import annotations

import hashlib

from shared.messages import Arm

BUCKETS = 100


def bucket_for(device_id: str, experiment_id: str) -> int:
    """The heater's bucket in ``0 .. 99`` for this experiment."""
    digest = hashlib.sha256(f"{experiment_id}/{device_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def arm_for(device_id: str, experiment_id: str, challenger_percent: int) -> Arm:
    """``Arm.CHALLENGER`` for about ``challenger_percent`` % of heaters, ``Arm.CHAMPION`` for the rest."""
    if not 0 <= challenger_percent <= BUCKETS:
        raise ValueError(f"challenger_percent must be within 0..100, got {challenger_percent}")
    return Arm.CHALLENGER if bucket_for(device_id, experiment_id) < challenger_percent else Arm.CHAMPION
