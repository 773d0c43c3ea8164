"""Route guards: every route states the role it needs, and the app refuses to start if one does not.

``Depends(require_role(Role.VIEWER))`` authenticates the caller's key (``Authorization: Bearer <key>``
or ``X-API-Key: <key>``) and checks its role: 401 for a missing, unknown or revoked key, 403 for a
role that is too low. ``Depends(public)`` marks the few routes anyone may call. ``route_roles``
refuses a route that declares no role, and ``document_roles`` writes each route's role into its
OpenAPI description from the same dependency that enforces it, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, Security, status
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from cloud.api.database import Database
from cloud.api.keys import ApiKey, KeyRejected, KeyStore
from cloud.api.roles import Role, permits

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: <API key>`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers=_CHALLENGE)


def _presented_token(bearer: HTTPAuthorizationCredentials | None, header_key: str | None) -> str:
    tokens = {token for token in (bearer.credentials if bearer else None, header_key) if token}
    if not tokens:
        raise _unauthorized("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    if len(tokens) > 1:
        raise _unauthorized("two different API keys in Authorization and X-API-Key: send one")
    return tokens.pop()


def require_role(required: Role) -> Callable[..., ApiKey]:
    """A dependency admitting keys whose role permits ``required``; it returns the caller's key."""

    def check_role(
        request: Request,
        db: Database,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        header_key: Annotated[str | None, Security(_api_key_header)],
    ) -> ApiKey:
        try:
            key = KeyStore(db).authenticate(_presented_token(bearer, header_key))
        except KeyRejected as exc:
            raise _unauthorized(str(exc)) from exc
        request.state.api_key = key  # the audit log's actor, refused requests included (cloud.api.app)
        if not permits(key.role, required):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this route needs the {required.value} role; API key {key.key_id} has {key.role.value}",
            )
        return key

    check_role.required_role = required  # type: ignore[attr-defined]
    return check_role


def public() -> None:
    """A dependency marking a route anyone may call without a key (health checks)."""


def _declared_roles(dependant: Dependant) -> list[Role | None]:
    """Every role a route's dependency tree declares, ``None`` standing for ``public``."""
    declared: list[Role | None] = []
    for dependency in dependant.dependencies:
        if dependency.call is public:
            declared.append(None)
        elif hasattr(dependency.call, "required_role"):
            declared.append(dependency.call.required_role)
        else:
            declared += _declared_roles(dependency)
    return declared


def _role_note(role: Role | None) -> str:
    if role is None:
        return "**Role:** none (public, no API key)."
    allowed = ", ".join(held.value for held in Role if permits(held, role))
    return f"**Role:** `{role.value}` (keys allowed: {allowed})."


def route_roles(router: APIRouter) -> dict[tuple[str, str], Role | None]:
    """``(path, method) → role`` of each route; raise if a route declares no role or several."""
    roles: dict[tuple[str, str], Role | None] = {}
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        declared = _declared_roles(route.dependant)
        if len(declared) != 1:
            raise RuntimeError(
                f"route {route.path} must declare exactly one role, not {declared}: "
                "use Depends(require_role(...)) or Depends(public)"
            )
        roles |= {(route.path_format, method.lower()): declared[0] for method in route.methods}
    return roles


def document_roles(app: FastAPI, roles: dict[tuple[str, str], Role | None]) -> None:
    """Make ``app.openapi()`` start each operation's description with its role, and add ``x-required-role``.

    It edits the generated schema rather than the routes, which are module-level and shared by every app.
    """
    generate = app.openapi

    def openapi_with_roles() -> dict[str, Any]:
        schema = generate()  # cached by FastAPI after the first call, so annotate once
        for (path, method), role in roles.items():
            operation = schema["paths"][path][method]
            if "x-required-role" not in operation:
                operation["description"] = f"{_role_note(role)}\n\n{operation.get('description', '')}".strip()
                operation["x-required-role"] = role.value if role else None
        return schema

    app.openapi = openapi_with_roles  # type: ignore[method-assign]
