"""The gateway's local HTTP endpoint for technicians on site: ``POST /outcomes``, nothing else.

Standard library only (``http.server``): a gateway has little memory, and one route with a bearer
token needs no framework. It binds to loopback unless told otherwise; the token comes from
``IOTSPHERE_EDGE_TOKEN`` or, failing that, a file in the agent's data dir created on first start
(readable by its owner only), which a technician's tablet app is given at commissioning. ``http.server`` is
imported when the API is served: it is off unless asked for, and costs a gateway 0.4 MB.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import threading
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from edge_agent.technician import OutcomeRefused, OutcomeRequest, TechnicianLog, UnknownDevice

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

log = logging.getLogger(__name__)

TOKEN_ENV = "IOTSPHERE_EDGE_TOKEN"
TOKEN_FILE = "local_api.token"
#: an outcome is a few hundred bytes; anything far bigger is refused unread
MAX_BODY_BYTES = 64 * 1024


def local_token(data_dir: Path) -> str:
    """The token from the environment, else the data dir's token file, created (mode 0600) if missing."""
    from shared.settings import secret  # pydantic-settings: only when the local API starts, not for --help

    from_env = (secret("edge_token") or "").strip()
    if from_env:
        return from_env
    path = data_dir / TOKEN_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    token = path.read_text().strip()
    if not token:
        raise ValueError(f"{path} is empty: put a token in it or set {TOKEN_ENV}")
    return token


def _validation_detail(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())


class LocalApi:
    """A threaded HTTP server around a ``TechnicianLog``; ``start`` serves in the background."""

    def __init__(self, technician: TechnicianLog, token: str, host: str = "127.0.0.1", port: int = 0):
        from http.server import ThreadingHTTPServer

        self.technician = technician
        self._token = token.encode()
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="local-api", daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> None:
        self._thread.start()
        log.info("local outcome API on http://%s:%d/outcomes", *self.server.server_address[:2])

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, which only a started server runs
            self.server.shutdown()
        self.server.server_close()

    def authorized(self, header: str | None) -> bool:
        scheme, _, token = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._token)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        from http.server import BaseHTTPRequestHandler

        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server names handlers after the method
                if self.path.rstrip("/") != "/outcomes":
                    return self._reply(HTTPStatus.NOT_FOUND, {"detail": f"no route {self.path}; use POST /outcomes"})
                if not api.authorized(self.headers.get("Authorization")):
                    return self._reply(HTTPStatus.UNAUTHORIZED, {"detail": "missing or wrong bearer token"})
                length = self.headers.get("Content-Length", "0")
                if not length.isdigit():
                    return self._reply(HTTPStatus.BAD_REQUEST, {"detail": "Content-Length must be a byte count"})
                length = int(length)
                if length > MAX_BODY_BYTES:
                    return self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"detail": "body too large"})
                try:
                    request = OutcomeRequest.model_validate_json(self.rfile.read(length))
                    outcome = api.technician.record(request)
                except ValidationError as exc:
                    return self._reply(HTTPStatus.BAD_REQUEST, {"detail": _validation_detail(exc)})
                except UnknownDevice as exc:
                    return self._reply(HTTPStatus.NOT_FOUND, {"detail": str(exc)})
                except OutcomeRefused as exc:
                    return self._reply(HTTPStatus.BAD_REQUEST, {"detail": str(exc)})
                self._reply(HTTPStatus.CREATED, outcome.model_dump(mode="json"))

            def _reply(self, status: HTTPStatus, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                if status is HTTPStatus.UNAUTHORIZED:
                    self.send_header("WWW-Authenticate", "Bearer")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args) -> None:  # http.server's signature; its lines go to logging
                log.debug("local API: " + format, *args)

        return Handler
