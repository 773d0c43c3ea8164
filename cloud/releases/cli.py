"""``iotsphere cloud init`` and ``iotsphere cloud release``: create the trust, then sign and roll out models."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import click

from cloud.cli_options import config_from_options, data_dir_option, mqtt_option
from cloud.releases import keystore, tuf_repo
from cloud.releases.director import IssueFailure, document_summary, failures
from cloud.releases.first_release import release
from cloud.releases.publisher import Directed, PublishError, publish_pending
from cloud.releases.rotation import rotate_key
from cloud.releases.service import ReleaseService, Signed
from cloud.storage import open_database
from shared.topics import validate_id


def echo_directed(directed: Directed) -> None:
    """What directing did, per gateway: every CLI command that directs gateways reports it this way."""
    for document in directed.documents:
        click.echo(f"Directed {document_summary(document)} (retained on down/desired).")
    echo_not_directed(directed.failures)
    if directed.pending:
        click.echo(f"Not published yet ({directed.pending}); `iotsphere cloud serve` sends the stored documents.")


def echo_not_directed(failures: list[IssueFailure]) -> None:
    for failure in failures:
        click.echo(
            f"NOT directed {failure.gateway_id}: {failure.reason} (recorded; the director publisher retries it)",
            err=True,
        )


def _quiet_tuf_logs() -> None:
    """Building fresh metadata makes python-tuf log "No signature for keyid" at INFO: expected here, not news."""
    logging.getLogger("tuf").setLevel(logging.WARNING)


@click.command("init")
@data_dir_option
@click.option("--force", is_flag=True, help="Replace existing keys and repository (the old ones are moved aside).")
def init_command(data_dir: Path | None, force: bool) -> None:
    """Create the encrypted signing keys and the TUF repository gateways trust."""
    config = config_from_options(data_dir, initialised=False)
    _quiet_tuf_logs()
    passphrase = keystore.passphrase_from_env_or_prompt(confirm=True)
    keys = tuf_repo.init_repository(config, passphrase, force=force)
    root_path = tuf_repo.trusted_root_path(config)
    click.echo(f"Signing keys (Ed25519, encrypted with the passphrase) in {config.keys_dir}:")
    for info in keys.values():
        click.echo(f"  {info.name:<10} {info.keyid}")
    click.echo(f"TUF repository in {config.tuf_dir} (serve metadata/ and targets/ over HTTP).")
    click.echo(f"Provision gateways with the trusted root: {root_path}")
    click.echo(f"Director keys are published to gateways as the TUF target {tuf_repo.DIRECTOR_KEYS_TARGET}.")
    click.echo(f"The root key signs only root metadata: keep {keystore.key_path(config.keys_dir, 'root')} offline.")


def _gateway_ids(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(validate_id(value, "gateway id") for value in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command("release")
@click.argument("artifact_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--gateway",
    "gateways",
    multiple=True,
    callback=_gateway_ids,
    help="Direct only this gateway (repeatable); default: the whole fleet.",
)
@data_dir_option
@mqtt_option
def release_command(artifact_dir: Path, gateways: tuple[str, ...], data_dir: Path | None, mqtt_url: str | None) -> None:
    """Sign ARTIFACT_DIR (model.onnx + release.json) into TUF; a model's first release becomes production and
    gateways are directed to it (a later one waits for `iotsphere models promote`)."""
    config = config_from_options(data_dir, mqtt_url)
    db = open_database(config.database_url)
    try:
        tuf_repo.require_initialized(config)  # before asking for the passphrase
        service = ReleaseService(config, keystore.passphrase_from_env_or_prompt())
        released = release(service, db, artifact_dir, list(gateways) or None, actor=config.actor)
    finally:
        db.close()
    _echo_signed(released.signed)
    if released.promotion is not None:
        click.echo(
            f"Registry: {released.signed.model_name} version {released.signed.version} is production "
            f"(history #{released.promotion['id']})."
        )
        if not released.directed.documents and not released.directed.failures:
            click.echo("No gateway known yet: gateways will be directed to this release when they first report status.")
    elif released.not_directed is not None:
        click.echo(f"Registry: released, no gateway directed: {released.not_directed}.")
    echo_directed(released.directed)
    if released.directed.pending:
        raise click.ClickException(
            f"{released.directed.pending}. The director documents are stored; `iotsphere cloud serve` publishes them "
            "when the broker is reachable."
        )


def _echo_signed(signed: Signed) -> None:
    published = signed.published
    name = f"{signed.model_name} version {signed.version}"
    if published.already_published:
        click.echo(f"{name} is already in TUF (targets v{published.targets_version}); nothing re-signed.")
        return
    click.echo(f"Signed {name} into TUF (targets v{published.targets_version}):")
    for target in (published.release_target, published.model_target):
        click.echo(f"  {target.path}  sha256 {tuf_repo.sha256_of(target)}  {target.length} bytes")


@click.command("rotate-key")
@click.argument("name", type=click.Choice(keystore.KEY_NAMES))
@data_dir_option
@mqtt_option
def rotate_key_command(name: str, data_dir: Path | None, mqtt_url: str | None) -> None:
    """Replace signing key NAME; gateways follow through TUF without being re-provisioned."""
    config = config_from_options(data_dir, mqtt_url)
    _quiet_tuf_logs()
    started = datetime.now(UTC)
    tuf_repo.require_initialized(config)
    info = rotate_key(config, keystore.passphrase_from_env_or_prompt(), name, actor=config.actor)
    click.echo(f"New {name} key {info.keyid}; the old one is kept encrypted as {name}.p12.retired-*.")
    if name == keystore.DIRECTOR:
        click.echo(f"Published in TUF as {tuf_repo.DIRECTOR_KEYS_TARGET}; every gateway's document was re-signed.")
        db = open_database(config.database_url)
        try:
            echo_not_directed([f for f in failures(db) if f.failed_at >= started])
            sent = publish_pending(config, db)
        except PublishError as exc:
            raise click.ClickException(
                f"{exc}. `iotsphere cloud serve` publishes the re-signed documents later."
            ) from exc
        finally:
            db.close()
        click.echo(f"Published {len(sent)} re-signed director document(s).")
    else:
        click.echo(f"Root metadata v{tuf_repo.DiskRepository(config.tuf_dir).root().version} lists the new key.")
