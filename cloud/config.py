"""Where the cloud keeps its state and how it reaches the broker; every value defaults to its environment variable.

The variables themselves, with their defaults and descriptions, are defined once in ``shared.settings``
(docs/configuration.md); this module gives the cloud its view of them. ``shared.settings`` is imported inside the
functions that read a value, so importing this module (every cloud command does, for ``--help`` too) stays cheap.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloud.data.urls import check, is_postgres, sqlite_file, sqlite_url

if TYPE_CHECKING:
    from shared.settings import Settings


def environment() -> Settings:
    """Every setting as the environment says now; ``shared.settings.SettingsError`` names a bad variable."""
    from shared.settings import settings

    return settings()


def _from_environment(name: str) -> Any:
    return field(default_factory=lambda: getattr(environment(), name))


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment or the password database (some containers)
        return f"uid-{os.getuid()}"


@dataclass(frozen=True)
class CloudConfig:
    data_dir: Path = _from_environment("data_dir")
    mqtt_url: str = _from_environment("mqtt_url")
    topic_prefix: str = _from_environment("topic_prefix")
    #: names the ingest worker's broker session (which keeps messages while it is down): one per worker process
    ingest_client_id: str = _from_environment("ingest_client_id")
    #: who the audit log names for a change made outside the API (CLI, workers' callers, scripts) that names no one
    actor: str = field(default_factory=lambda: configured_actor())
    #: the most bytes the API reads of any request body (no route takes uploads: models arrive through TUF releases)
    api_max_body_bytes: int = _from_environment("api_max_body_bytes")
    #: seconds between the signed checkpoints ``cloud serve`` adds to the audit log (``cloud.audit_checkpoints``)
    audit_checkpoint_interval_s: float = _from_environment("audit_checkpoint_interval")
    #: ``IOTSPHERE_DATABASE_URL`` as set, None when unset (``database_url``); kept out of repr: it may hold a password
    database_url_setting: str | None = field(default_factory=lambda: _secret("database_url"), repr=False)

    def __post_init__(self) -> None:
        """A URL naming no database the cloud runs on is refused here, before a command touches anything: one
        message naming the variable (a ValueError the commands show as it is)."""
        if self.database_url_setting is not None:
            check(self.database_url_setting)

    @property
    def has_tuf_repository(self) -> bool:
        """``iotsphere cloud init`` has made the TUF repository here."""
        return (self.tuf_dir / "metadata" / "timestamp.json").exists()

    @property
    def initialised(self) -> bool:
        """A cloud lives here: ``cloud init`` made its TUF repository, or its database exists (made by the API, a
        library caller or a version before commands refused a fresh folder; on PostgreSQL: migrated). Commands
        refuse any other folder, so a mistyped ``--data-dir`` is an error, not a new empty cloud."""
        if self.has_tuf_repository:
            return True
        if is_postgres(self.database_url):
            from cloud.data.postgres import is_migrated

            return is_migrated(self.database_url)
        return self.database_path.exists()

    @property
    def database_url(self) -> str:
        """The database, as a SQLAlchemy URL: ``IOTSPHERE_DATABASE_URL``, else the SQLite file in ``data_dir``."""
        return self.database_url_setting or sqlite_url(self.data_dir / "iotsphere.db")

    @property
    def database_path(self) -> Path:
        """The SQLite file of ``database_url``; ValueError when it names PostgreSQL (open ``database_url``)."""
        if self.database_url_setting is None:
            return self.data_dir / "iotsphere.db"
        return sqlite_file(self.database_url_setting)

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


def _secret(name: str) -> str | None:
    from shared.settings import secret

    return secret(name)


def key_passphrase() -> str | None:
    """The signing keys' passphrase from ``IOTSPHERE_KEY_PASSPHRASE``, None when unset (a library call never
    prompts: ``cloud.releases.keystore.passphrase_from_env_or_prompt`` is the CLI's way)."""
    from shared.settings import secret

    return secret("key_passphrase")


def field_key() -> str | None:
    """The key of encrypted database fields from ``IOTSPHERE_FIELD_KEY``, None when unset (``cloud.crypto_fields``)."""
    from shared.settings import secret

    return secret("field_key")


def configured_actor() -> str:
    """The actor of a change whose caller names none: ``IOTSPHERE_ACTOR``, else ``cli:<os user>``."""
    return environment().actor or f"cli:{_os_user()}"
