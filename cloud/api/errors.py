"""How the API answers a failure: one handler for the cloud's error hierarchy, and the bodies clients read.

Routes do not catch domain errors: a service raises one of ``cloud.errors`` and ``answer_error`` (installed once by
``install_error_handler``) answers it with its kind's status, ``STATUS``. Two body shapes, both in the OpenAPI
document: ``ErrorBody`` (``{"detail": "..."}``) for every refusal but 422, and FastAPI's ``HTTPValidationError``
(``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``) for 422, whether FastAPI's validation, a route's own
the single-valued query guard or the body guard raised it. docs/api.md has the table.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import validation_error_definition, validation_error_response_definition
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from cloud.errors import Invalid, NotFound, Refused, Unavailable
from shared.settings import SettingsError

#: the status each kind of error answers with. Refused is 409 (the request conflicts with the current state: the
#: same request may pass later, or after another change), Invalid 400 (the request names things that cannot go
#: together; FastAPI's 422 stays for requests that do not match their schema), Unavailable 503. An environment
#: variable of the API process that does not fit its setting (``shared.settings``, read when a request needs it)
#: is the server's misconfiguration, not the caller's mistake: 503 too, naming the variable.
STATUS = {NotFound: 404, Refused: 409, Invalid: 400, Unavailable: 503, SettingsError: 503}


class ErrorBody(BaseModel):
    """FastAPI's own shape for ``HTTPException``: ``{"detail": "..."}``."""

    detail: str

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "unknown device 'wh-0042'"}]})


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting error statuses with the ErrorBody model."""
    meaning = {
        400: "The request is well formed but cannot be carried out; the detail says why.",
        401: "Missing, unknown or revoked API key.",
        403: "The API key's role is too low for this route.",
        404: "Nothing found under this path.",
        409: "Refused in the current state; nothing was changed.",
        413: "The request body is larger than the API reads (IOTSPHERE_API_MAX_BODY_BYTES).",
        503: "The database cannot be read, or the API lacks what the request needs (the signing-key passphrase); "
        "nothing was changed. A Retry-After header says when trying again may succeed.",
    }
    return {code: {"model": ErrorBody, "description": meaning[code]} for code in codes}


def status_of(exc: Exception) -> int:
    """The status ``exc`` answers with: its kind's in ``STATUS``."""
    return next(code for kind, code in STATUS.items() if isinstance(exc, kind))


def answer_error(request: Request, exc: Exception) -> JSONResponse:
    """The one answer to a domain error: its kind's status and ``{"detail": message}``; Retry-After when known.

    Only the hierarchy reaches it: a bare ``ValueError`` (pydantic's ``ValidationError`` raised inside a route is
    one) is the server's own bug and answers 500 like any other.
    """
    retry = getattr(exc, "retry_after_s", None)
    headers = {"Retry-After": str(retry)} if retry is not None else None
    return JSONResponse({"detail": str(exc)}, status_of(exc), headers=headers)


def install_error_handler(app: FastAPI) -> None:
    """Answer each kind of ``STATUS`` raised anywhere in a request with ``answer_error``."""
    for kind in STATUS:
        app.add_exception_handler(kind, answer_error)  # type: ignore[arg-type]


def body_too_large(max_bytes: int) -> dict[str, str]:
    """The 413 body the body guard answers with."""
    return {"detail": f"request body larger than {max_bytes} bytes"}


def invalid_json(exc: ValueError) -> dict[str, list[dict[str, Any]]]:
    """The 422 body for a JSON body that does not decode, shaped as FastAPI's own ``json_invalid`` error."""
    position = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
    return {"detail": [{"type": "json_invalid", "loc": ["body", position], "msg": f"JSON decode error: {exc}"}]}


def repeated_query(names: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The 422 body for query parameters that take one value but were given several."""
    return {"detail": [{"type": "value_error", "loc": ["query", n], "msg": f"{n} takes one value"} for n in names]}


def document_guards(app: FastAPI) -> None:
    """Add the body guard's answers (413, and 422 for a body that is not JSON) to every operation's responses."""
    generate = app.openapi

    def openapi_with_guards() -> dict[str, Any]:
        schema = generate()  # cached by FastAPI after the first call, so the loop runs once
        for operations in schema["paths"].values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                responses.setdefault("413", _too_large_response)
                responses.setdefault("422", _validation_response)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("ErrorBody", _error_schema)
        components.setdefault("ValidationError", validation_error_definition)
        components.setdefault("HTTPValidationError", validation_error_response_definition)
        return schema

    app.openapi = openapi_with_guards  # type: ignore[method-assign]


_error_schema = ErrorBody.model_json_schema()
_too_large_response = {
    "description": error_responses(413)[413]["description"],
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
}
_validation_response = {
    "description": "Validation Error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
}
