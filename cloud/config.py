"""Where the cloud keeps its state and how it reaches the broker; every value has an env override."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path

from shared.mqtt_url import DEFAULT_MQTT_URL
from shared.topics import DEFAULT_PREFIX


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment or the password database (some containers)
        return f"uid-{os.getuid()}"


@dataclass(frozen=True)
class CloudConfig:
    data_dir: Path = field(default_factory=lambda: Path(_env("IOTSPHERE_DATA_DIR", "var/cloud")))
    mqtt_url: str = field(default_factory=lambda: _env("IOTSPHERE_MQTT_URL", DEFAULT_MQTT_URL))
    topic_prefix: str = field(default_factory=lambda: _env("IOTSPHERE_TOPIC_PREFIX", DEFAULT_PREFIX))
    #: names the ingest worker's broker session (which keeps messages while it is down): one per worker process
    ingest_client_id: str = field(default_factory=lambda: _env("IOTSPHERE_INGEST_CLIENT_ID", "iotsphere-ingest"))
    #: who the audit log names for a change made outside the API (CLI, workers' callers, scripts) that names no one
    actor: str = field(default_factory=lambda: _env("IOTSPHERE_ACTOR", f"cli:{_os_user()}"))
    #: the most bytes the API reads of any request body (no route takes uploads: models arrive through TUF releases)
    api_max_body_bytes: int = field(default_factory=lambda: int(_env("IOTSPHERE_API_MAX_BODY_BYTES", str(2**20))))
    #: seconds between the signed checkpoints ``cloud serve`` adds to the audit log (``cloud.audit_checkpoints``)
    audit_checkpoint_interval_s: float = field(
        default_factory=lambda: float(_env("IOTSPHERE_AUDIT_CHECKPOINT_INTERVAL", "3600"))
    )

    @property
    def database_path(self) -> Path:
        return self.data_dir / "iotsphere.db"

    @property
    def tuf_dir(self) -> Path:
        """Published TUF repository: metadata/ and targets/, served over HTTP."""
        return self.data_dir / "tuf"

    @property
    def keys_dir(self) -> Path:
        """Encrypted signing keys (TUF roles and director)."""
        return self.data_dir / "keys"

    @property
    def artifacts_dir(self) -> Path:
        """Training outputs (ONNX files, release files) before they are signed into TUF."""
        return self.data_dir / "artifacts"


PASSPHRASE_ENV = "IOTSPHERE_KEY_PASSPHRASE"


def configured_actor() -> str:
    """The actor of a change whose caller names none: ``IOTSPHERE_ACTOR``, else ``cli:<os user>``."""
    return CloudConfig().actor
