"""Debian's Prometheus tools for the tests, and a real Prometheus server on a free loopback port.

A missing tool fails the test with the command that installs it, never a skip: CI runs tests/ensure_system.sh,
which installs them, so a skip would only hide a broken machine.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.private_broker import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
INSTALL = "sudo apt-get install -y prometheus prometheus-alertmanager  (tests/ensure_system.sh does it as root)"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run  {INSTALL}", pytrace=False)
    return path


def run_tool(name: str, *args: str | Path) -> str:
    """Run a Prometheus tool; fail the test with its output unless it exits 0."""
    done = subprocess.run([tool(name), *map(str, args)], capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{name} {' '.join(map(str, args))} failed:\n{output}"
    return output


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


class Prometheus:
    """``prometheus`` with ``config`` written into ``folder`` (relative paths resolve there), its own storage,
    listening on 127.0.0.1 only; queried through its HTTP API."""

    def __init__(self, folder: Path, config: dict) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_file = folder / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(config))
        self.log = folder / "prometheus.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Prometheus:
        command = [
            tool("prometheus"),
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"prometheus did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)
        return self

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> dict[frozenset, float]:
        """An instant query's result: each series' labels (without __name__) → value."""
        data = self.api("query", query=expr)
        return {
            frozenset((k, v) for k, v in series["metric"].items() if k != "__name__"): float(series["value"][1])
            for series in data["result"]
        }

    def value(self, expr: str) -> float | None:
        """The single value ``expr`` gives, None while it gives none."""
        result = self.query(expr)
        assert len(result) <= 1, f"{expr} gave several series: {result}"
        return next(iter(result.values()), None)

    def wait_for(self, expr: str, expected: float, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while (got := self.value(expr)) != expected:
            assert time.monotonic() < deadline, f"{expr} is {got}, expected {expected}; targets: {self.targets()}"
            time.sleep(0.25)

    def targets(self) -> list[dict]:
        return [
            {key: target[key] for key in ("scrapePool", "scrapeUrl", "health", "lastError")}
            for target in self.api("targets")["activeTargets"]
        ]
