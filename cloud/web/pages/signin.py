"""Sign-in with an API key, and sign-out: the only pages anyone may open without a session."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud.api.auth import public
from cloud.api.deps import Database
from cloud.api.keys import KeyRejected
from cloud.config import environment
from cloud.web.auth import COOKIE, ViewerPage
from cloud.web.rendering import PageRoute, render
from cloud.web.sessions import SessionStore

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _safe_next(next_path: str) -> str:
    """Only a path on this site: ``//host`` or ``https://host`` would send a signed-in browser elsewhere."""
    return next_path if next_path.startswith("/") and not next_path.startswith("//") else "/"


def _sign_in_page(request: Request, next_path: str, problem: str | None = None, status: int = 200) -> HTMLResponse:
    idle_minutes = environment().web_session_idle_minutes
    context = {"next": _safe_next(next_path), "problem": problem, "idle_minutes": idle_minutes}
    return render(request, "login.html", context, status)


@router.get("/login", dependencies=[Depends(public)])
def sign_in_form(request: Request, next: str = "/") -> HTMLResponse:
    return _sign_in_page(request, next)


@router.post("/login", dependencies=[Depends(public)])
def sign_in(
    request: Request, db: Database, api_key: Annotated[str, Form()], next: Annotated[str, Form()] = "/"
) -> Response:
    try:
        opened = SessionStore(db).sign_in(api_key)
    except KeyRejected as exc:
        return _sign_in_page(request, next, str(exc), 401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        opened.cookie_token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=int(SessionStore(db).lifetime.total_seconds()),
        path="/",
    )
    return response


@router.post("/logout")
def sign_out(request: Request, db: Database, session: ViewerPage) -> Response:
    SessionStore(db).sign_out(request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/")
def home(session: ViewerPage) -> Response:
    return RedirectResponse("/models", status_code=303)
