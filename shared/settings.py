"""Every environment variable IoTSphere reads, defined once: name, type, default and a one-line description.

Cloud, gateway and simulator alike read their variables through :func:`settings`, and nothing else in the
project reads ``os.environ`` (tests/test_config.py checks both, and that docs/configuration.md lists every field).
This module imports only pydantic-settings and the project's constant modules, so a gateway installs and runs it
without the cloud. pydantic-settings costs ~0.1 s to import: callers import this module inside the function that
needs a value, so ``--help`` never pays for it.

``python -m shared.settings`` prints the table of docs/configuration.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    FilePath,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.topics import DEFAULT_MQTT_URL, DEFAULT_PREFIX

PREFIX = "IOTSPHERE_"

CLOUD = "cloud"
GATEWAY = "gateway"
ALL_SIDES = "cloud, gateway, simulator"
TESTS = "gateway (tests only)"


def _setting(default: Any, read_by: str, description: str) -> Any:
    return Field(default, description=description, json_schema_extra={"read_by": read_by})


class Settings(BaseSettings):
    """The environment as typed values; an unset variable takes its default."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="ignore")

    data_dir: Path = _setting(
        Path("var/cloud"), CLOUD, "Cloud state folder (database, TUF repository, keys, artifacts); `--data-dir` wins."
    )
    database_url: SecretStr | None = _setting(
        None,
        CLOUD,
        "Database: `sqlite:///PATH`, or `postgresql://user:pass@host/db` to run the cloud on PostgreSQL, migrated "
        "when opened (docs/data-layer.md); unset: `sqlite:///<data dir>/iotsphere.db`.",
    )
    mqtt_url: str = _setting(
        DEFAULT_MQTT_URL, ALL_SIDES, "Broker URL, `mqtt://user:pass@host:port` or `mqtts://…`; `--mqtt` wins."
    )
    mqtt_ca: FilePath | None = _setting(
        None, ALL_SIDES, "PEM file of the CA that signed the broker's certificate, for `mqtts://` (unset: system CAs)."
    )
    topic_prefix: str = _setting(DEFAULT_PREFIX, ALL_SIDES, "MQTT topic prefix the cloud and its gateways share.")
    ingest_client_id: str = _setting(
        "iotsphere-ingest", CLOUD, "Broker session of the ingest worker (kept while it is down): one per worker."
    )
    actor: str | None = _setting(
        None, CLOUD, "Who the audit log names for a CLI or script change that names no one (unset: `cli:<os user>`)."
    )
    api_max_body_bytes: PositiveInt = _setting(2**20, CLOUD, "Most bytes the API reads of any request body.")
    audit_checkpoint_interval: PositiveFloat = _setting(
        3600.0, CLOUD, "Seconds between the signed audit-log checkpoints `cloud serve` adds."
    )
    key_passphrase: SecretStr | None = _setting(
        None, CLOUD, "Passphrase of the encrypted signing keys; commands that sign ask for it when it is unset."
    )
    key_kdf_rounds: PositiveInt = _setting(
        600_000, CLOUD, "PBKDF2 rounds protecting new key files; lower only for throwaway keys (the test suite)."
    )
    field_key: SecretStr | None = _setting(
        None,
        CLOUD,
        "Key encrypting private database fields (unset: `keys/field-encryption.key`, made 0600); on PostgreSQL give "
        "every cloud process the same one.",
    )
    deployment_deadline_s: PositiveFloat = _setting(
        1800.0, CLOUD, "Seconds a gateway has to answer a director document before its deployment is overdue."
    )
    promotion_margin: float = _setting(
        0.01, CLOUD, "Fraction by which a challenger must beat the champion, unless a command says otherwise."
    )
    rollout_auto_canary: bool = _setting(
        False, CLOUD, "1 lets retraining and A/B winners start a staged rollout's canary by themselves."
    )
    log_format: Literal["text", "json"] = _setting(
        "text", ALL_SIDES, "`json`: one JSON object per log line (time, level, role, logger, message, request id)."
    )
    metrics_public: bool | None = _setting(
        None, CLOUD, "1: `/metrics` needs no API key; 0: always one; unset: none only on a loopback connection."
    )
    ingest_metrics_address: str = _setting(
        "127.0.0.1:9464", CLOUD, "`host:port` where `cloud ingest` serves /metrics, /healthz, /readyz (`off`: none)."
    )
    training_metrics_address: str = _setting(
        "127.0.0.1:9465", CLOUD, "`host:port` where `train worker` serves /metrics, /healthz, /readyz (`off`: none)."
    )
    web_session_idle_minutes: PositiveFloat = _setting(
        30.0, CLOUD, "Minutes a dashboard sign-in lasts without a request before it must sign in again."
    )
    web_session_max_hours: PositiveFloat = _setting(
        12.0, CLOUD, "Hours a dashboard sign-in lasts at most, however busy (then it must sign in again)."
    )
    alert_scan_interval_s: PositiveFloat = _setting(
        60.0, CLOUD, "Seconds between the alert inbox's passes over drift, rollouts, training, experiments, gateways."
    )
    alert_webhook_url: str | None = _setting(
        None, CLOUD, "URL the alert inbox POSTs each alert to, in Alertmanager's webhook format (unset: none)."
    )
    alert_gateway_offline_after_s: PositiveFloat = _setting(
        3600.0, CLOUD, "Seconds a gateway may stay silent before the alert inbox says it is offline."
    )
    alert_lookback_days: PositiveFloat = _setting(
        7.0, CLOUD, "Days back the alert inbox looks for conditions when it first runs (older ones raise nothing)."
    )
    gateway_stale_after_s: PositiveFloat = _setting(
        900.0, CLOUD, "Seconds after its last message that an online gateway counts as stale in the metrics."
    )
    retention_days: PositiveInt | None = _setting(
        None, CLOUD, "Days of features and predictions `cloud serve`'s jobs keep, pruned daily (unset: all kept)."
    )
    edge_data_dir: Path | None = _setting(
        None, GATEWAY, "Gateway state folder (outbox, models, TUF metadata); `--data-dir` wins."
    )
    cloud_url: str | None = _setting(
        None, GATEWAY, "Base URL of the cloud API serving TUF updates (unset: the gateway runs without updates)."
    )
    gateway_key: SecretStr | None = _setting(None, GATEWAY, "This gateway's API key (role gateway) for TUF downloads.")
    edge_token: SecretStr | None = _setting(
        None, GATEWAY, "Token of the technician's local API (unset: `local_api.token` in the data folder, made 0600)."
    )
    fault_point: str | None = _setting(
        None, TESTS, "`step[:nth]`: the agent kills itself there, to prove installs survive a crash."
    )

    @field_validator("*", mode="before")
    @classmethod
    def _empty_means_unset(cls, value: Any, info: ValidationInfo) -> Any:
        """``X=`` (as compose files write an unset value) takes the default; an empty passphrase stays empty so the
        keystore refuses it rather than swapping it for a prompt."""
        if value == "" and info.field_name != "key_passphrase":
            raise PydanticUseDefault
        return value


class SettingsError(ValueError):
    """An environment variable whose value does not fit its setting; the message names the variable."""


#: what a value must be, by pydantic error type, in words an operator reads
_EXPECTED = {
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "bool_parsing": "1 or 0 (true/false, yes/no, on/off)",
    "path_not_file": "an existing file",
}


def env_name(field_name: str) -> str:
    return PREFIX + field_name.upper()


def _problem(error: dict[str, Any]) -> str:
    expected = _EXPECTED.get(error["type"]) or error["msg"].removeprefix("Input should be ").lower()
    return f"{env_name(str(error['loc'][0]))} must be {expected}, not {error['input']!r}"


def settings() -> Settings:
    """The settings as the environment says now: read on each call (tests and the demo set variables while running);
    a bad value raises :class:`SettingsError` naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError("; ".join(_problem(error) for error in exc.errors())) from None


def secret(name: str) -> str | None:
    """The text of secret setting ``name`` as the environment says now, for the one call that uses it (``Settings``
    itself never prints it); None when unset."""
    value: SecretStr | None = getattr(settings(), name)
    return None if value is None else value.get_secret_value()


def markdown_table() -> str:
    """The table of docs/configuration.md: one row per variable, in definition order."""
    rows = ["| Variable | Default | Read by | What it sets |", "| --- | --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = "unset" if field.default is None else f"`{field.default}`"
        rows.append(f"| `{env_name(name)}` | {default} | {field.json_schema_extra['read_by']} | {field.description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
