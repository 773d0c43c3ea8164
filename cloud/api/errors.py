"""The error bodies routes return, so clients read failures the same way everywhere.

Two shapes, both in the OpenAPI document: ``ErrorBody`` (``{"detail": "..."}``) for every refusal but 422, and
FastAPI's ``HTTPValidationError`` (``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``) for 422, whether
FastAPI's validation, a route's own check across fields (``invalid``) or the body guard raised it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import validation_error_definition, validation_error_response_definition
from pydantic import BaseModel, ConfigDict


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
        503: "The database cannot be read.",
    }
    return {code: {"model": ErrorBody, "description": meaning[code]} for code in codes}


def invalid(message: str, loc: Sequence[str | int] = ("body",)) -> RequestValidationError:
    """A 422 for a check pydantic cannot express (one field against another), in the documented 422 shape."""
    return RequestValidationError([{"type": "value_error", "loc": tuple(loc), "msg": message, "input": None}])


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
