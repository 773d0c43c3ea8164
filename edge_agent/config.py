"""What a gateway's agent runs with, and the check of it, apart from the agent itself.

``iotsphere edge run`` builds and checks an ``AgentConfig`` before it hands over to the serving process
(``edge_agent.serve``), which imports the agent; this module imports neither numpy nor onnxruntime nor the agent, so
the command does not load them once for the check and again to serve (about half a second each on a 2-core machine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from edge_agent import fault_points
from shared.mqtt_url import parse_mqtt_url, tls_context
from shared.topics import DEFAULT_PREFIX, validate_id

#: after a fetch of the director keys that a bad signature triggered and that brought none new: no other until then
DEFAULT_KEY_REFRESH_INTERVAL = timedelta(minutes=10)
#: the same after such a fetch failed (the cloud unreachable)
DEFAULT_KEY_RETRY_INTERVAL = timedelta(minutes=1)


def provisioned(tuf_dir: Path) -> bool:
    """Whether the gateway's TUF folder holds a trusted root (provisioned once; ngclient keeps it current)."""
    return (tuf_dir / "metadata" / "root.json").exists()


@dataclass(frozen=True)
class ProbationPolicy:
    #: predictions a release must serve within bounds before it is committed
    predictions_required: int = 50
    #: slowest acceptable run of one batch, in milliseconds
    max_batch_latency_ms: float = 2000.0


@dataclass(frozen=True)
class AgentConfig:
    gateway_id: str
    data_dir: Path
    #: MQTT broker; None runs without one (in-process feeding only; the outbox keeps everything)
    mqtt_url: str | None = None
    #: the CA an ``mqtts://`` broker's certificate must chain to (``IOTSPHERE_MQTT_CA``); None: the system's CAs
    mqtt_ca: Path | None = None
    #: the cloud API serving TUF; None disables updates
    cloud_url: str | None = None
    api_key: str | None = None
    #: provisioned TUF root metadata (needed once, on the first start)
    trusted_root: Path | None = None
    prefix: str = DEFAULT_PREFIX
    #: features are computed whenever telemetry time crosses a multiple of this
    feature_interval: timedelta = timedelta(hours=1)
    #: how long after a boundary to wait for heaters whose reading for it comes late
    tick_grace: timedelta = timedelta(minutes=2)
    #: how soon a document deferred because the cloud was unreachable is tried again
    update_retry: timedelta = timedelta(minutes=1)
    #: after a fetch of the director keys that a bad signature caused and that brought no new keys, how long
    #: until the next may happen (forged documents cannot make the gateway hammer the cloud's TUF routes)
    key_refresh_interval: timedelta = DEFAULT_KEY_REFRESH_INTERVAL
    #: seconds between retained status refreshes
    status_interval: float = 60.0
    bad_messages_kept: int = 100
    probation: ProbationPolicy = field(default_factory=ProbationPolicy)
    #: paho's reconnect delays (seconds), each wait drawn with full jitter below the exponential step
    reconnect_delay: tuple[float, float] = (1, 30)
    #: bytes of features and of predictions the outbox keeps while offline; past them the oldest go
    #: (outcomes are never dropped). 32 MiB each: weeks of hourly batches for a few hundred heaters
    outbox_features_bytes: int = 32 * 1024 * 1024
    outbox_predictions_bytes: int = 32 * 1024 * 1024
    #: how far back a technician's outcome links to a failure prediction it does not name
    prediction_horizon: timedelta = timedelta(days=14)
    #: the technicians' local HTTP endpoint (``POST /outcomes``); None: not served. 0 picks a free port
    local_api_port: int | None = None
    local_api_host: str = "127.0.0.1"
    #: the technicians' API token (``IOTSPHERE_EDGE_TOKEN``); None: the data folder's token file, made if missing
    local_api_token: str | None = None
    #: TEST ONLY: an install step at which the process kills itself (``edge_agent.fault_points``); None in production
    fault_point: str | None = None


def check_config(config: AgentConfig) -> None:
    """Raise ValueError for a configuration the agent cannot start with; ``iotsphere edge run`` asks before it hands
    over to the serving process, so these are usage errors of the command."""
    validate_id(config.gateway_id, "gateway id")
    if config.feature_interval < timedelta(minutes=1):
        raise ValueError("the feature interval must be at least one minute")
    if config.fault_point:
        fault_points.parse(config.fault_point)
    if config.mqtt_url and parse_mqtt_url(config.mqtt_url).tls:
        tls_context(config.mqtt_ca)  # a CA file that holds no certificate: a SettingsError naming the variable
    if config.cloud_url and config.trusted_root is None and not provisioned(config.data_dir / "tuf"):
        raise ValueError(
            f"no TUF trust anchor in {config.data_dir / 'tuf'}: pass --trusted-root with the cloud's root.json"
        )
