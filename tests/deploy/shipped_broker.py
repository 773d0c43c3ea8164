"""Mosquitto as docker-compose.yml runs it: the shipped mosquitto.conf and ACL, the secrets deploy/make_secrets.py
made, each container path the config names mapped to the file the compose service mounts there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.private_broker import PrivateBroker

PROJECT = Path(__file__).resolve().parents[2]
COMPOSE = PROJECT / "docker-compose.yml"
MAKE_SECRETS = PROJECT / "deploy" / "make_secrets.py"
CONTAINER_PORT = 8883


def make_secrets(out: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the script as an operator does; ``out`` stands in for the deploy folder."""
    return subprocess.run(
        [sys.executable, str(MAKE_SECRETS), "--out", str(out), *args], capture_output=True, text=True, timeout=60
    )


def compose_env(out: Path) -> dict[str, str]:
    lines = (out / "secrets" / "compose.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if not line.startswith("#"))


def mounts(service: str, secrets_dir: Path, volumes: Path) -> dict[str, Path]:
    """Container path → host path of every volume of the compose ``service``: files the secrets script makes come
    from ``secrets_dir``, the rest from the repository; a named volume is a folder under ``volumes``, shared by every
    service that mounts it."""
    mounted = {}
    for volume in yaml.safe_load(COMPOSE.read_text())["services"][service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            made = secrets_dir / Path(source).relative_to("deploy")
            mounted[target] = made if made.exists() else PROJECT / source
        else:
            mounted[target] = volumes / source
            mounted[target].mkdir(parents=True, exist_ok=True)
    return mounted


class ShippedBroker(PrivateBroker):
    """The shipped config on a free loopback port, run as root so it can read this test's files."""

    def __init__(self, folder: Path, secrets_dir: Path):
        super().__init__(folder)
        service = yaml.safe_load(COMPOSE.read_text())["services"]["mosquitto"]
        assert f"{CONTAINER_PORT}:{CONTAINER_PORT}" in service["ports"]
        mounted = mounts("mosquitto", secrets_dir, folder)
        config = next(host for target, host in mounted.items() if target.endswith("/mosquitto.conf")).read_text()
        for target in sorted(mounted, key=len, reverse=True):
            config = config.replace(target, str(mounted[target]))
        config, listeners = re.subn(
            rf"^listener {CONTAINER_PORT}$", f"listener {self.port} 127.0.0.1", config, flags=re.M
        )
        assert listeners == 1, "the shipped config must have the one TLS listener the compose file publishes"
        self.config.write_text(f"user root\nlog_dest file {folder / 'mosquitto.log'}\n{config}")

    def mqtts_url(self, user: str, password: str, host: str = "localhost") -> str:
        return f"mqtts://{user}:{password}@{host}:{self.port}"
