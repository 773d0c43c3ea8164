"""Put the pages, their static files and the offline API docs on the API's app (``cloud.api.app.create_app``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from cloud.api.auth import public, route_roles
from cloud.config import environment
from cloud.web import census
from cloud.web.pages import (
    admin,
    alerts,
    drift,
    experiments,
    fleet,
    models,
    monitoring,
    predictions,
    rollouts,
    signin,
    training,
)

STATIC = Path(__file__).resolve().parent / "static"
_SWAGGER = "/static/vendor/swagger-ui"
#: answers smaller than this go out as they are: a partial htmx polls is a few hundred bytes, and gzip's header and
#: the compression cost more than they save below about a kilobyte
GZIP_MINIMUM_BYTES = 1024
PAGES = (
    signin.router,
    models.router,
    alerts.router,
    rollouts.router,
    experiments.router,
    fleet.router,
    admin.router,
    predictions.router,
    training.router,
    drift.router,
    monitoring.router,
)


def _docs_router(openapi_url: str, title: str) -> APIRouter:
    """Swagger UI from the vendored files: FastAPI's default page loads it from a CDN and shows nothing offline."""
    router = APIRouter(include_in_schema=False)

    @router.get("/docs", dependencies=[Depends(public)])
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} · docs",
            swagger_js_url=f"{_SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{_SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{_SWAGGER}/favicon-32x32.png",
        )

    return router


class PagesGZip:
    """gzip for what browsers load (pages, ``/static``, ``/docs``) when they accept it; the API under ``/api`` goes
    out as before (its clients are gateways and scripts, and a model artifact does not shrink)."""

    def __init__(self, app: ASGIApp) -> None:
        self.plain = app
        self.compressed = GZipMiddleware(app, minimum_size=GZIP_MINIMUM_BYTES, compresslevel=6)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        api = scope["type"] != "http" or scope["path"] == "/api" or scope["path"].startswith("/api/")
        await (self.plain if api else self.compressed)(scope, receive, send)


def install(app: FastAPI) -> None:
    """Mount ``/static``, ``/docs`` and every page, compressed; refuse to start if a page declares no role, as the
    API does."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(PagesGZip)
    database_url = app.state.config.database_url
    app.state.deployment_census = census.CensusTaker(
        lambda: census.take(database_url, timedelta(seconds=environment().deployment_deadline_s))
    )
    for router in (*PAGES, _docs_router(app.openapi_url or "/openapi.json", app.title)):
        route_roles(router)
        app.include_router(router)
