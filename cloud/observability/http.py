"""``/metrics``, ``/healthz`` and ``/readyz`` on every cloud process, and the request id and HTTP metrics of the API.

The API serves them beside its routes; ``cloud ingest`` serves them on a port of its own (:func:`serve_sidecar`),
from the same router, so both answer the same way. ``/metrics`` needs no key on a loopback connection (Prometheus
beside the process, or behind a proxy on the host) and a key of any person's role (viewer and up) otherwise;
``IOTSPHERE_METRICS_PUBLIC`` says 1 (never a key: a private network) or 0 (always one). Gateway keys are refused:
they sit on devices in the field and have no business reading the fleet's figures.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import sqlite3
import threading
import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud.api.auth import public
from cloud.api.deps import Config, _api_key_header, _bearer, require_role
from cloud.api.roles import Role
from cloud.config import CloudConfig, environment
from cloud.errors import Unavailable
from cloud.observability import health
from cloud.observability.health_collector import HealthCollector
from cloud.observability.metrics import HTTP_REQUESTS, HTTP_SECONDS
from cloud.observability.store_collector import StoreCollector
from cloud.storage import connect
from shared.log_setup import request_id

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"], dependencies=[Depends(public)])

#: a client's X-Request-ID is kept when it looks like an id; anything else is replaced, never logged as sent
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: the route label of a request no route matched (404, 405): one value, whatever the path
UNMATCHED = "<unmatched>"


class Check(BaseModel):
    #: ``database``, ``migrations``, ``broker:<client id>``, ``heartbeat:<worker>``
    name: str
    ok: bool
    detail: str


class Checks(BaseModel):
    #: ``live`` or ``ready``, ``failing`` when a check fails (status 503)
    status: str
    checks: list[Check]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "checks": [
                        {"name": "database", "ok": True, "detail": "answers"},
                        {"name": "migrations", "ok": True, "detail": "schema version 21"},
                        {"name": "broker:iotsphere-ingest", "ok": True, "detail": "connected"},
                        {"name": "heartbeat:ingest-iotsphere-ingest", "ok": True, "detail": "last pass 0 s ago"},
                    ],
                }
            ]
        }
    )


def _answer(checks: list[health.CheckResult], ok_status: str, response: Response) -> Checks:
    ok = all(check.ok for check in checks)
    response.status_code = 200 if ok else 503
    return Checks(status=ok_status if ok else "failing", checks=[Check(**check.to_json()) for check in checks])


@router.get("/healthz", response_model=Checks, responses={503: {"model": Checks, "description": "A loop hangs."}})
def live(response: Response) -> Checks:
    """Liveness: every worker loop of this process passes in time (restart the process when not)."""
    return _answer(health.liveness(), "live", response)


@router.get("/readyz", response_model=Checks, responses={503: {"model": Checks, "description": "Not ready."}})
def ready(config: Config, response: Response) -> Checks:
    """Readiness: live, the database answers, its migrations are applied and the broker connections are up."""
    return _answer(health.readiness(config.database_url), "ready", response)


def _open_to(request: Request) -> bool:
    configured = environment().metrics_public
    if configured is not None:
        return configured
    host = (request.scope.get("server") or ("",))[0]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a Unix socket: whoever can reach it is on the host
        return True


_viewer = require_role(Role.VIEWER)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(
    request: Request,
    config: Config,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header_key: Annotated[str | None, Security(_api_key_header)],
) -> Response:
    """This process's metrics in the Prometheus text format (docs/operations.md); a key unless open (see above)."""
    if not _open_to(request):
        try:
            db = connect(config.database_url)
        except (sqlite3.Error, OperationalError) as exc:  # no key can be checked: 503, as every route answers then
            raise Unavailable(f"database unavailable: {exc}") from exc
        try:
            _viewer(request, db, bearer, header_key)
        finally:
            db.close()
    body = generate_latest(REGISTRY) + generate_latest(request.app.state.metrics_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class RequestContext:
    """Give each request an id (the client's X-Request-ID, or a new one), echo it, log and audit under it, and
    count the request by route template, method and status with its duration.

    Outermost middleware: a request refused by an inner guard is counted and carries its id too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = sent if _REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
                route = scope.get("route")
                labels = (getattr(route, "path", UNMATCHED), scope["method"])
                HTTP_SECONDS.labels(*labels).observe(time.perf_counter() - started)
                HTTP_REQUESTS.labels(*labels, str(status)).inc()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


def metrics_registry(config: CloudConfig, *, store: bool) -> CollectorRegistry:
    """What this app adds to the process's metrics: its health checks, and with ``store`` the database's state
    (the API process only: every process reads the same database, one target suffices)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HealthCollector())
    if store:
        registry.register(StoreCollector(config.database_url, environment().gateway_stale_after_s))
    return registry


def instrument(app: FastAPI, config: CloudConfig, *, store: bool) -> None:
    """Give ``app``'s requests ids and metrics, and what ``/metrics`` adds (``router`` is included by the caller,
    among its routes). Call last: the middleware must be the outermost."""
    app.state.metrics_registry = metrics_registry(config, store=store)
    app.add_middleware(RequestContext)


def sidecar_app(config: CloudConfig) -> FastAPI:
    """``/metrics``, ``/healthz`` and ``/readyz`` alone, for a process that serves no API (``cloud ingest``)."""
    app = FastAPI(title="IoTSphere process health", openapi_url=None)
    app.state.config = config
    app.include_router(router)
    instrument(app, config, store=False)
    return app


class Sidecar:
    """The side app on ``host:port`` in a background thread; ``port`` 0 takes a free one (see ``address``)."""

    def __init__(self, config: CloudConfig, host: str, port: int) -> None:
        import uvicorn  # with the process that serves, not at import

        self._server = uvicorn.Server(
            uvicorn.Config(sidecar_app(config), host=host, port=port, log_config=None, access_log=False, lifespan="off")
        )
        self._thread = threading.Thread(target=self._server.run, name="metrics", daemon=True)

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; return ``host:port``. OSError when the address cannot be bound."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError("the metrics server could not listen (is the address in use?)")
            time.sleep(0.01)
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def serve_sidecar(config: CloudConfig, address: tuple[str, int] | None) -> Sidecar | None:
    """Start the side app at ``address`` (None: not at all). An address in use is logged, not fatal: storing what
    gateways send matters more than being watched, and a probe that cannot reach it says so."""
    if address is None:
        return None
    sidecar = Sidecar(config, *address)
    try:
        where = sidecar.start()
    except OSError as exc:
        log.error("metrics and health NOT served at %s:%d: %s", *address, exc)
        return None
    log.info("serving /metrics, /healthz and /readyz at http://%s", where)
    return sidecar


def parse_address(address: str) -> tuple[str, int] | None:
    """``host:port`` (``[::1]:9464`` for IPv6) → (host, port); ``off`` → None; ValueError naming the problem."""
    if address.strip().lower() == "off":
        return None
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"metrics address must be host:port or off, not {address!r}")
    return host.strip("[]"), int(port)
