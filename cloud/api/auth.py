"""Route guards: every route states the role it needs, and the app refuses to start if one does not.

A route declares its role with the caller dependency of ``cloud.api.deps`` (``key: Operator``, or
``Depends(require_role(Role.VIEWER))`` for a whole router), which authenticates the key and checks the role, or
with ``Depends(public)`` for the few routes anyone may call. ``route_roles`` refuses a route that declares no role,
and ``document_roles`` writes each route's role into its OpenAPI description from the same dependency that enforces
it, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from cloud.api.roles import Role, permits


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
    """``(path, method) → role`` of each route; raise if a route declares no role or several (the same role on the
    router and the route is one)."""
    roles: dict[tuple[str, str], Role | None] = {}
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        declared = list(dict.fromkeys(_declared_roles(route.dependant)))
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
