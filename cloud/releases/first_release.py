"""Releasing a trained model: sign it, and direct gateways to it when it is the model's first release.

A model's first release becomes production at once (the registry says what gateways run); a later version is signed
only and waits for a promotion or a staged rollout. Above both the release service and the registry, which records
the promotion and calls back into the service to direct the fleet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from cloud.config import configured_actor
from cloud.registry import MLModelRegistry, RegistryRefused
from cloud.releases.publisher import Directed
from cloud.releases.service import ReleaseService, Signed

FIRST_RELEASE = "first release: no version was in production"


@dataclass(frozen=True)
class Released:
    """What ``release`` did: the signed version, the gateways directed, and what the registry says now."""

    signed: Signed
    directed: Directed = field(default_factory=Directed)
    #: the registry's history entry when this release became production (a model's first release)
    promotion: dict | None = None
    #: why no gateway was directed (another version is production, or the registry refused): what to do instead
    not_directed: str | None = None


def release(
    service: ReleaseService,
    db: sqlite_utils.Database,
    artifact_dir: Path,
    gateway_ids: list[str] | None = None,
    *,
    actor: str | None = None,
) -> Released:
    """Sign, then direct: only ``gateway_ids`` when named (the registry unchanged), else the fleet when the model
    has no production version yet (this release becomes production, with a history entry); a later version
    is left to a promotion."""
    actor = actor or configured_actor()
    signed = service.sign(db, artifact_dir, actor=actor)
    name, version = signed.model_name, signed.version
    if gateway_ids:
        return Released(signed, service.direct_gateways(db, name, version, gateway_ids, actor=actor))
    registry = MLModelRegistry(db, service.config)
    production = registry.get_active_model(name)
    if production is not None:
        current = production["model_version"]
        if current == version:
            return Released(signed, not_directed=f"{name} version {version} is already production")
        return Released(
            signed,
            not_directed=f"{name} version {current} is production: promote version {version} to direct gateways "
            f"to it (`iotsphere models promote {name} {version} --reason ...`, or a staged rollout)",
        )
    try:
        change = registry.promote_model_to_production(name, version, actor=actor, reason=FIRST_RELEASE, rollout=service)
    except RegistryRefused as exc:  # e.g. it failed evaluation: signed all the same, promoted by an admin later
        return Released(signed, not_directed=str(exc))
    return Released(signed, Directed(change.documents, change.failures, change.pending), change.history)
