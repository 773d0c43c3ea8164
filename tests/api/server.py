"""A real uvicorn server on a free loopback port, in a thread, for tests that talk HTTP."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI


class ThreadedServer:
    def __init__(self, app: FastAPI):
        # Binding port 0 ourselves and handing uvicorn the socket leaves no window for another process to take it.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()
