"""``iotsphere admin export-root``: the TUF root a new gateway is provisioned with (``edge run --trusted-root``).

The root is public (it holds only public keys) but it is the gateway's trust anchor, so it is copied from the
repository as is, never rebuilt: a deployment writes it where its gateways read it, e.g. deploy/provision/.
"""

from __future__ import annotations

from pathlib import Path

import click

from cloud.cli_options import config_from_options, data_dir_option
from cloud.releases import tuf_repo
from shared.atomic_files import atomic_write


@click.command("export-root")
@data_dir_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write root.json, e.g. deploy/provision/root.json.",
)
def export_root_command(data_dir: Path | None, out: Path) -> None:
    """Write the latest TUF root metadata, which new gateways trust on their first start."""
    config = config_from_options(data_dir)
    root = tuf_repo.trusted_root_bytes(config)
    try:
        atomic_write(out, root, mode=0o644)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"TUF root ({len(root)} bytes) written to {out}: provision gateways with --trusted-root {out}")
