"""The registry's ``Rollout`` for a finished staged rollout: production switches without re-directing anyone.

Every gateway in the rollout already runs the version, so re-publishing to them (as ``DirectorRollout`` does)
would only spend sequences. Only gateways that joined the scope while the rollout ran are directed, and a
general version becomes the fleet's desired state, so gateways seen later get it from the director publisher.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from cloud.registry import DirectorRollout, gateways_in_scope
from cloud.releases import director


@dataclass(frozen=True)
class CompletedRollout(DirectorRollout):
    #: the gateways the staged rollout directed
    directed: frozenset[str] = frozenset()

    def direct(self, db: sqlite_utils.Database, model_name: str, version: str, device_type: str) -> director.Issued:
        late = [g for g in gateways_in_scope(db, model_name, device_type) if g not in self.directed]
        return self.direct_to(db, model_name, version, device_type, late)
