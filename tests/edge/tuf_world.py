"""A real cloud for updater tests: cloud.releases' TUF repository served by the cloud API over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.releases import director, keystore, tuf_repo
from edge_agent.director_state import DirectorState
from edge_agent.events import AgentEvent
from edge_agent.model_loader import FeatureContract
from edge_agent.model_store import ModelStore
from edge_agent.tuf_client import TufClient
from edge_agent.updater import ReleaseUpdater
from shared.director import DesiredModel, DirectorSigned, Experiment, format_time, sign_director
from tests.api.conftest import ServedCloud, served_cloud
from tests.edge.releases import FEATURE_NAMES, FEATURE_SET, BuiltRelease

PASSPHRASE = "edge tests passphrase"
GATEWAY = "gw-001"


@dataclass
class Cloud:
    served: ServedCloud
    director_key: Ed25519PrivateKey

    @property
    def config(self) -> CloudConfig:
        return self.served.config

    @property
    def url(self) -> str:
        return self.served.base_url

    @property
    def gateway_token(self) -> str:
        return self.served.tokens[Role.GATEWAY]

    def publish(self, built: BuiltRelease) -> None:
        tuf_repo.add_release(self.config, PASSPHRASE, built.release_bytes, built.onnx_bytes)

    def desired(self, model_name: str, version: str) -> DesiredModel:
        return director.desired_model(self.config, model_name, version)

    def challenged(self, model_name: str, version: str, challenger: str, experiment: Experiment) -> DesiredModel:
        """``version`` as the release, with ``challenger`` beside it in ``experiment``."""
        ref = director.target_ref(tuf_repo.current_targets(self.config), model_name, challenger)
        return self.desired(model_name, version).model_copy(update={"challenger": ref, "experiment": experiment})

    def document(
        self,
        sequence: int,
        models: dict[str, DesiredModel],
        gateway: str = GATEWAY,
        expires_in: timedelta = timedelta(days=1),
        key: Ed25519PrivateKey | None = None,
    ) -> bytes:
        now = datetime.now(UTC)
        signed = DirectorSigned(
            gateway_id=gateway,
            sequence=sequence,
            issued_at=format_time(now),
            expires_at=format_time(now + expires_in),
            models=models,
        )
        return sign_director(signed, [key or self.director_key]).to_json()


@contextmanager
def running_cloud(folder: Path) -> Iterator[Cloud]:
    config = CloudConfig(data_dir=folder)
    tuf_repo.init_repository(config, PASSPHRASE)
    with served_cloud(config) as served:
        yield Cloud(served, keystore.director_key(config.keys_dir, PASSPHRASE))


@dataclass
class Gateway:
    updater: ReleaseUpdater
    store: ModelStore
    events: list[AgentEvent] = field(default_factory=list)

    def active_version(self, model_name: str = "component_failure") -> str | None:
        model = self.store.active().get(model_name)
        return model.version if model else None

    def last_event(self) -> AgentEvent:
        return self.events[-1]


def make_gateway(folder: Path, cloud: Cloud, api_key: str | None = None) -> Gateway:
    """A gateway's updater over its own data folder, provisioned with the cloud's root metadata."""
    events: list[AgentEvent] = []
    store = ModelStore(folder / "models", FeatureContract(FEATURE_SET, tuple(FEATURE_NAMES)), on_event=events.append)
    store.load_active()
    tuf = TufClient(
        cloud.url, folder / "tuf", api_key or cloud.gateway_token, tuf_repo.trusted_root_bytes(cloud.config)
    )
    updater = ReleaseUpdater(
        GATEWAY, DirectorState(folder / "director"), store, tuf, store.features, on_event=events.append
    )
    return Gateway(updater, store, events)
