"""The gateway's local HTTP endpoint for technicians on site: ``POST /outcomes`` for apps, and the technician page.

Standard library only (``http.server``): a gateway has little memory, and one JSON route with a bearer
token and a few server-rendered forms need no framework. The page (``edge_agent.technician_page``) is imported
only when the API is served, and a phone opens it by pairing with a one-time code instead of the token.

It binds to loopback unless told otherwise; the token comes from
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

from edge_agent.technician import OutcomeRefused, OutcomeRequest, TechnicianLog, UnknownDevice, validation_detail

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

    from edge_agent.technician_page import Site, TechnicianPages

log = logging.getLogger(__name__)

TOKEN_ENV = "IOTSPHERE_EDGE_TOKEN"
TOKEN_FILE = "local_api.token"
#: an outcome is a few hundred bytes; anything far bigger is refused unread
MAX_BODY_BYTES = 64 * 1024


def local_token(data_dir: Path, configured: str | None) -> str:
    """The configured token (``iotsphere edge run`` reads it from the environment), else the data dir's token file,
    created (mode 0600) if missing."""
    if configured and configured.strip():
        return configured.strip()
    path = data_dir / TOKEN_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    token = path.read_text().strip()
    if not token:
        raise ValueError(f"{path} is empty: put a token in it or set {TOKEN_ENV}")
    return token


class LocalApi:
    """A threaded HTTP server around a ``TechnicianLog``; ``start`` serves in the background.

    With a ``site`` (the running agent) it also serves the technician page, its pairing codes and sessions in
    ``data_dir``.
    """

    def __init__(
        self,
        technician: TechnicianLog,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        site: Site | None = None,
        data_dir: Path | None = None,
    ):
        from http.server import ThreadingHTTPServer

        self.technician = technician
        self._token = token.encode()
        self.pages: TechnicianPages | None = None
        if site is not None and data_dir is not None:
            from edge_agent.pairing import Pairing
            from edge_agent.technician_page import TechnicianPages

            self.pages = TechnicianPages(technician, Pairing(data_dir), site)
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
        if self.pages is not None:
            self.pages.pairing.close()

    def authorized(self, header: str | None) -> bool:
        scheme, _, token = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._token)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        from http.server import BaseHTTPRequestHandler

        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server names handlers after the method
                self._page(b"")

            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/outcomes":
                    body = self._body()
                    return None if body is None else self._page(body)
                if not api.authorized(self.headers.get("Authorization")):
                    return self._reply(HTTPStatus.UNAUTHORIZED, {"detail": "missing or wrong bearer token"})
                body = self._body()
                if body is None:
                    return None
                try:
                    request = OutcomeRequest.model_validate_json(body)
                    outcome = api.technician.record(request)
                except ValidationError as exc:
                    return self._reply(HTTPStatus.BAD_REQUEST, {"detail": validation_detail(exc)})
                except UnknownDevice as exc:
                    return self._reply(HTTPStatus.NOT_FOUND, {"detail": str(exc)})
                except OutcomeRefused as exc:
                    return self._reply(HTTPStatus.BAD_REQUEST, {"detail": str(exc)})
                self._reply(HTTPStatus.CREATED, outcome.model_dump(mode="json"))

            def _body(self) -> bytes | None:
                """The request's body, or None once a refusal is sent."""
                length = self.headers.get("Content-Length", "0")
                if not length.isdigit():
                    self._reply(HTTPStatus.BAD_REQUEST, {"detail": "Content-Length must be a byte count"})
                    return None
                if int(length) > MAX_BODY_BYTES:
                    self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"detail": "body too large"})
                    return None
                return self.rfile.read(int(length))

            def _page(self, body: bytes) -> None:
                if api.pages is None:
                    return self._reply(HTTPStatus.NOT_FOUND, {"detail": f"no route {self.path}; use POST /outcomes"})
                from edge_agent.technician_page import Request, cookie_value, parse_form

                cookie = cookie_value(self.headers.get("Cookie"))
                reply = api.pages.handle(Request(self.command, self.path, cookie, parse_form(body)))
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
                return None

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
