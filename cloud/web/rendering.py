"""Templates and the page route: what every page gets, and how a page answers an error.

Jinja2 with autoescaping on (``select_autoescape`` for ``.html``), so a model name or a technician's note is text,
never markup. Every template gets the session (``session``), its CSRF token and ``can(role)``, which decides which
controls to show with the same ``permits`` that guards the POST. A page that raises answers with an HTML page, not
the API's JSON: the domain errors with their API status (``cloud.api.errors.STATUS``), a missing session with a
redirect to sign in.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

from cloud.api.errors import STATUS, status_of
from cloud.api.roles import Role, permits
from cloud.web.auth import CSRF_FIELD, SignInRequired

TEMPLATES = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
        autoescape=select_autoescape(["html"]),
    )
)


def render(request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
    """``template`` with ``context`` and what every page needs."""
    session = getattr(request.state, "web_session", None)
    shared = {
        "session": session,
        "csrf_field": CSRF_FIELD,
        "csrf_token": session.csrf_token if session else "",
        "can": lambda role: session is not None and permits(session.key.role, Role(role)),
        "path": request.url.path,
    }
    return TEMPLATES.TemplateResponse(request, template, shared | (context or {}), status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "message": message}, status)


class PageRoute(APIRoute):
    """An ``APIRoute`` whose errors are pages: the web router's ``route_class``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as exc:
                return RedirectResponse(exc.location, status_code=303)
            except HTTPException as exc:
                return error_page(request, exc.status_code, str(exc.detail))
            except RequestValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors())
                return error_page(request, 400, f"the form is not valid: {problems}")
            except tuple(STATUS) as exc:
                return error_page(request, status_of(exc), str(exc))

        return page_handler
