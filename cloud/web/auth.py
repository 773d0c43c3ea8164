"""Who is asking, for pages: the session cookie, the role a page needs, and the CSRF token every change sends.

A page declares its role like an API route (``Depends(page_role(Role.OPERATOR))``); the roles and ``permits`` are the
API's, so a viewer's page shows no control a viewer may not use and a forged POST gets the same 403. A request
without a live session is sent to the sign-in page (GET) or refused (anything else). Every POST must carry the
session's CSRF token, as the form field ``csrf_token`` or the ``X-CSRF-Token`` header htmx sends; the cookie is
``SameSite=Strict`` as well, but the token does not rely on the browser.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, status

from cloud.api.deps import Database
from cloud.api.roles import Role, permits
from cloud.web.sessions import SessionEnded, SessionStore, WebSession

COOKIE = "iotsphere_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInRequired(Exception):
    """A page was asked for without a live session: the browser goes to the sign-in page, then back."""

    def __init__(self, next_path: str, reason: str):
        super().__init__(reason)
        self.location = f"/login?next={quote(next_path, safe='/')}"


async def _csrf_token_sent(request: Request) -> str:
    if header := request.headers.get(CSRF_HEADER):
        return header
    form = await request.form()  # Starlette caches it: the page's own Form parameters read the same
    value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else ""


def page_role(required: Role) -> Callable[..., WebSession]:
    """A dependency admitting sessions whose key's role permits ``required``; it returns the session."""

    async def check(request: Request, db: Database) -> WebSession:
        token = request.cookies.get(COOKIE, "")
        try:
            session = SessionStore(db).resolve(token) if token else None
        except SessionEnded as exc:
            reason = str(exc)
            session = None
        else:
            reason = "not signed in"
        if session is None:
            if request.method in _SAFE:
                raise SignInRequired(request.url.path, reason)
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"{reason}: sign in again and resend")
        request.state.api_key = session.key  # the audit log's actor, refused requests included (cloud.api.app)
        request.state.web_session = session
        if request.method not in _SAFE and not hmac.compare_digest(await _csrf_token_sent(request), session.csrf_token):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="the form's CSRF token is missing or wrong: reload")
        if not permits(session.key.role, required):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this needs the {required.value} role; you are signed in as {session.key.role.value}",
            )
        return session

    check.required_role = required  # type: ignore[attr-defined]
    return check


ViewerPage = Annotated[WebSession, Depends(page_role(Role.VIEWER))]
TechnicianPage = Annotated[WebSession, Depends(page_role(Role.TECHNICIAN))]
OperatorPage = Annotated[WebSession, Depends(page_role(Role.OPERATOR))]
AdminPage = Annotated[WebSession, Depends(page_role(Role.ADMIN))]
