"""ASGI middleware that refuses a bad request before any route reads it, and answers OPTIONS, for every route.

Middleware rather than a check per route, so a route added later is covered without remembering to be. The body
is read in the chunks the server hands over and the request is refused (413) as soon as it passes the cap, with or
without a ``Content-Length`` (chunked uploads included), so a client cannot make the API hold more than the cap.
A JSON body is then decoded once with ``shared.strict_json``: ``NaN``, ``Infinity``, numbers beyond a float and
nesting deep enough to exhaust the stack are refused (422) here, where FastAPI's ``json.loads`` would accept the
first ones into ``dict[str, Any]`` fields and crash on the last. Both answers have the documented shapes
(``ErrorBody`` for 413, ``HTTPValidationError`` for 422).

A query parameter the document lists as one value (not an array) given twice is refused (422): FastAPI would take
the last one silently, so ``?model=a&model=b`` would answer for ``b`` as if ``a`` had not been asked.

OPTIONS on any route's path answers 204 with ``Allow`` listing every method the path serves, and a 405 lists them
too: Starlette names only the methods of the first route it tried, which for ``GET`` and ``POST`` declared on the
same path in two routes is half the truth.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud.api.errors import body_too_large, invalid_json, repeated_query
from shared import strict_json

_JSON_TYPES = ("application/json",)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type in _JSON_TYPES or (media_type.startswith("application/") and media_type.endswith("+json"))


async def _send_json(send: Send, status: int, body: dict) -> None:
    content = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


class BodyGuard:
    """Cap every request body at ``max_bytes`` (413) and refuse JSON bodies that are not strict JSON (422)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_json(send, 413, body_too_large(self.max_bytes))  # refused before a byte is read
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _send_json(send, 413, body_too_large(self.max_bytes))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and _is_json(_header(scope, b"content-type")):
            try:
                strict_json.loads(body)
            except ValueError as exc:  # UnicodeDecodeError and json.JSONDecodeError are ValueErrors too
                await _send_json(send, 422, invalid_json(exc))
                return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the route the body already read, then passes on what the server sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class AllowedMethods:
    """Answer OPTIONS with ``Allow`` and give every 405 the full ``Allow`` of the path's resource.

    The resource is the most specific route template matching the path (fewest parameters), as the OpenAPI
    document lists it: ``/api/models/x/rollback`` is the rollback resource (POST), though ``GET`` of the
    ``/api/models/{model_name}/{version}`` template would also match it.
    """

    def __init__(self, app: ASGIApp, routes: list[APIRoute]):
        self.app = app
        self.routes = routes

    def _allow(self, scope: Scope) -> tuple[bytes, bytes] | None:
        """The ``Allow`` header for the request's path, None if no route serves it."""
        matching = [route for route in self.routes if route.path_regex.match(scope["path"])]
        if not matching:
            return None
        template = min(matching, key=lambda route: route.path_format.count("{")).path_format
        served = {method for route in matching if route.path_format == template for method in route.methods}
        return b"allow", ", ".join([*sorted(served), "OPTIONS"]).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and (allow := self._allow(scope)):
            await send({"type": "http.response.start", "status": 204, "headers": [allow]})
            await send({"type": "http.response.body", "body": b""})
            return

        async def full_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405 and (allow := self._allow(scope)):
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                message = {**message, "headers": [*headers, allow]}
            await send(message)

        await self.app(scope, receive, full_allow)


def _is_array(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "array" or any(_is_array(option) for option in schema.get("anyOf", []))


class SingleValuedQuery:
    """Refuse (422) a query parameter given more than once where the OpenAPI document allows one value."""

    def __init__(self, app: ASGIApp, routes: list[APIRoute], openapi: Callable[[], dict[str, Any]]):
        self.app = app
        self.routes = routes
        self.openapi = openapi

    @cached_property
    def _single(self) -> dict[tuple[str, str], frozenset[str]]:
        """(path template, method) → names of its query parameters that take one value."""
        return {
            (path, method.upper()): frozenset(
                p["name"] for p in operation.get("parameters", []) if p["in"] == "query" and not _is_array(p["schema"])
            )
            for path, operations in self.openapi()["paths"].items()
            for method, operation in operations.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            counts = Counter(
                name for name, _ in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            )
            route = next((r for r in self.routes if r.matches(scope)[0] == Match.FULL), None)
            single = self._single.get((route.path_format, scope["method"]), frozenset()) if route else frozenset()
            repeated = sorted(name for name in single if counts[name] > 1)
            if repeated:
                await _send_json(send, 422, repeated_query(repeated))
                return
        await self.app(scope, receive, send)
