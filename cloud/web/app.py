"""Put the pages, their static files and the offline API docs on the API's app (``cloud.api.app.create_app``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from cloud.api.auth import public, route_roles
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


def install(app: FastAPI) -> None:
    """Mount ``/static``, ``/docs`` and every page; refuse to start if a page declares no role, as the API does."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in (*PAGES, _docs_router(app.openapi_url or "/openapi.json", app.title)):
        route_roles(router)
        app.include_router(router)
