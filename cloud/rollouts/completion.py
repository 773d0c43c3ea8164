"""The registry's ``Rollout`` for a finished staged rollout: production switches without re-directing anyone.

Every gateway in the rollout already runs the version, so re-publishing to them (as ``DirectorRollout`` does)
would only spend sequences. Only gateways that joined the scope while the rollout ran are directed, and a
general version becomes the fleet's desired state, so gateways seen later get it from the director publisher.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from cloud.registry import GENERAL, DirectorRollout, gateways_in_scope
from cloud.releases import director
from cloud.releases.publisher import release_to_gateways
from shared.director import DirectorDocument


@dataclass(frozen=True)
class CompletedRollout(DirectorRollout):
    #: the gateways the staged rollout directed
    directed: frozenset[str] = frozenset()

    def publish(
        self, db: sqlite_utils.Database, model_name: str, version: str, device_type: str
    ) -> list[DirectorDocument]:
        if device_type == GENERAL:
            director.set_fleet_desired(
                self.config, {model_name: director.desired_model(self.config, model_name, version)}
            )
        late = [g for g in gateways_in_scope(db, model_name, device_type) if g not in self.directed]
        return release_to_gateways(self.config, self.passphrase, model_name, version, late) if late else []
