"""The one error body every route returns, so clients read failures the same way everywhere."""

from __future__ import annotations

from typing import Any

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
        503: "The database cannot be read.",
    }
    return {code: {"model": ErrorBody, "description": meaning[code]} for code in codes}
