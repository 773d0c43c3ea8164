"""A private Mosquitto for tests that stop and restart the broker or need their own settings."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class PrivateBroker:
    """``mosquitto`` on a free loopback port, with persistence so queued messages survive a restart."""

    def __init__(self, folder: Path, extra_config: str = "", persistence: bool = True):
        self.folder = folder
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        (folder / "data").mkdir(parents=True, exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            # started as root, mosquitto would switch to its own user and lose access to this folder
            "user root\n"
            f"persistence {'true' if persistence else 'false'}\n"
            f"persistence_location {folder / 'data'}/\n"
            f"log_dest file {folder / 'mosquitto.log'}\n" + (extra_config or "allow_anonymous true\n")
        )

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.config)])
        deadline = time.monotonic() + 10
        while not listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start: {(self.folder / 'mosquitto.log').read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: mosquitto writes its persistence file and exits."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def __enter__(self) -> PrivateBroker:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
