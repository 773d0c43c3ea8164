"""The registry's ``Rollout`` for a finished staged rollout: production switches without re-directing anyone.

Every gateway in the rollout already runs the version, so re-publishing to them (as a promotion does) would only
spend sequences. Only gateways that joined the scope while the rollout ran are directed, and a general version
becomes the fleet's desired state, so gateways seen later get it from the director publisher.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from cloud.releases.service import ReleaseService


@dataclass(frozen=True)
class CompletedRollout(ReleaseService):
    #: the gateways the staged rollout directed
    directed: frozenset[str] = frozenset()

    def production_gateways(self, db: sqlite_utils.Database, model_name: str, device_type: str) -> list[str]:
        return [g for g in super().production_gateways(db, model_name, device_type) if g not in self.directed]
