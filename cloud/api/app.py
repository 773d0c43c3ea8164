"""The cloud's FastAPI application: read access to the fleet, models and predictions, and TUF downloads."""

from __future__ import annotations

import hashlib

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud.api.auth import document_roles, route_roles
from cloud.api.errors import document_guards, install_error_handler
from cloud.api.guards import AllowedMethods, BodyGuard, SingleValuedQuery
from cloud.api.keys import ApiKey, KeyStore
from cloud.api.routes import (
    admin,
    alerts,
    audit,
    dead_letters,
    deployments,
    director,
    drift,
    experiments,
    features,
    feedback,
    gateways,
    health,
    models,
    monitoring,
    predictions,
    registry,
    retraining,
    rollouts,
    security,
    training,
    tuf,
)
from cloud.audit import AuditLog
from cloud.config import CloudConfig
from cloud.observability import http as observability
from cloud.storage import connect, open_database
from cloud.web import app as web

_TAGS = [
    {"name": "health", "description": "Liveness, readiness and Prometheus metrics of this process."},
    {"name": "predictions", "description": "Predictions gateways made for water heaters."},
    {"name": "feedback", "description": "Outcomes and ratings of predictions."},
    {"name": "features", "description": "Feature history of water heaters and recorded training datasets."},
    {"name": "models", "description": "Registered models and their versions."},
    {"name": "training", "description": "Training runs, schedules and evaluations of model versions."},
    {"name": "retraining", "description": "Automated retraining: policies, checks and every decision with its reason."},
    {"name": "gateways", "description": "Gateways' status and update events."},
    {"name": "experiments", "description": "A/B tests of a challenger model version against the champion."},
    {"name": "deployments", "description": "Where each gateway stands with the release it was directed to."},
    {"name": "rollouts", "description": "Staged rollouts: a canary share of the gateways, then the rest."},
    {"name": "monitoring", "description": "Drift of features, data quality and performance of model versions."},
    {"name": "operations", "description": "What ingest could not store."},
    {"name": "security", "description": "Director documents gateways were sent that the cloud never issued to them."},
    {"name": "alerts", "description": "The alert inbox: what needs a person, acknowledged and resolved."},
    {"name": "admin", "description": "API keys and the audit log."},
    {"name": "tuf", "description": "The signed TUF repository gateways update from."},
]

_DESCRIPTION = """
Every route needs an API key (`Authorization: Bearer <key>` or `X-API-Key: <key>`) except the
health checks (`/api/health`, `/healthz`, `/readyz`) and `/metrics` on a loopback connection. Roles:
`viewer` < `technician` < `operator` < `admin`, each including the ones before;
`gateway` keys (one per gateway) open only the TUF routes. Create keys with `iotsphere admin create-key`.
"""


_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AuditMutations:
    """Write the mutating requests of an authenticated caller that no service records: refusals and crashes.

    A change is audited by the service that makes it, in its transaction, however it is called (API, CLI or a
    direct call). What no service can see is a request refused before or instead of a change — a role too low
    (403), a body that does not validate (422), a conflict (409) — or one that crashed (500): who tried what is
    evidence too, so this middleware records every mutating request answered with 4xx or 5xx, and only those: a
    request that succeeded was recorded by its service, with the caller's key as actor (``ApiKey.actor``).

    ``require_role`` leaves the caller's key in the request state; a request without one (401) has no actor and
    is not recorded, or anyone could fill the log. The body is hashed as the route reads it, never stored. The
    entry is written before the response starts, so a client that has its answer finds the entry; if it cannot
    be written the request fails (500) rather than going unrecorded.
    """

    def __init__(self, app: ASGIApp, database_url: str):
        self.app = app
        self.database_url = database_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _MUTATING:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # the dict request.state writes to, shared with the routes
        body = hashlib.sha256()

        async def hashing_receive() -> Message:
            message = await receive()
            body.update(message.get("body", b""))
            return message

        started = False

        async def recording_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if "api_key" in state and message["status"] >= 400:
                    await run_in_threadpool(self._record, state["api_key"], scope, message["status"], body.hexdigest())
            await send(message)

        try:
            await self.app(scope, hashing_receive, recording_send)
        except Exception:  # the route crashed, perhaps half-way through a change: the 500 is recorded too
            if not started and "api_key" in state:
                await run_in_threadpool(self._record, state["api_key"], scope, 500, body.hexdigest())
            raise

    def _record(self, key: ApiKey, scope: Scope, status: int, body_sha256: str) -> None:
        method, path = scope["method"], scope["path"]
        details = {"method": method, "path": path, "status": status, "body_sha256": body_sha256, "role": key.role.value}
        db = connect(self.database_url)
        try:
            AuditLog(db).record(key.actor, f"http.{method.lower()}", path, details)
        finally:
            db.close()


def create_app(config: CloudConfig) -> FastAPI:
    """The app over ``config``'s database (created and migrated here) and TUF repository."""
    db = open_database(config.database_url)
    try:
        KeyStore(db)  # prepares the key table before requests arrive
    finally:
        db.close()
    app = FastAPI(
        title="IoTSphere MLOps API",
        version="1",
        description=_DESCRIPTION,
        openapi_tags=_TAGS,
        docs_url=None,  # served by cloud.web from the vendored Swagger UI, not from a CDN
        redoc_url=None,
    )
    app.state.config = config
    roles = {}
    routes = []
    for module in (
        health,
        predictions,
        feedback,
        registry,
        models,
        gateways,
        dead_letters,
        admin,
        audit,
        tuf,
        features,
        deployments,
        director,
        training,
        retraining,
        drift,
        rollouts,
        experiments,
        monitoring,
        security,
        alerts,
        observability,
    ):
        roles |= route_roles(module.router)
        routes += [route for route in module.router.routes if isinstance(route, APIRoute)]
        app.include_router(module.router)
    document_roles(app, roles)
    web.install(app)
    document_guards(app)
    install_error_handler(app)
    app.add_middleware(AuditMutations, database_url=config.database_url)
    app.add_middleware(BodyGuard, max_bytes=config.api_max_body_bytes)  # outside the audit: it hashes what is read
    app.add_middleware(SingleValuedQuery, routes=routes, openapi=app.openapi)
    app.add_middleware(AllowedMethods, routes=routes)  # OPTIONS reads no body
    observability.instrument(app, config, store=True)  # outermost: every answer has a request id and is counted
    return app
