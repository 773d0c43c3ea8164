"""The cloud API in a background thread of this process, on a free loopback port."""

from __future__ import annotations

import threading
import time

import uvicorn

from cloud.api.app import create_app
from cloud.config import CloudConfig
from cloud.embedded_broker import HOST, free_port


class ApiServer:
    """uvicorn serving ``create_app(config)``; outside the main thread it leaves signal handling to the caller."""

    def __init__(self, config: CloudConfig, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(create_app(config), host=HOST, port=self.port, log_config=None, log_level="warning")
        )
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 15.0) -> None:
        self._thread = threading.Thread(target=self._server.run, name="api-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start on {HOST}:{self.port}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
            self._thread = None
