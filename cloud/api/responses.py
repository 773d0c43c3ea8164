"""Response models derived from the domain's own types, so a route never restates a dataclass field by field.

``@domain_response(example)`` on ``class RunOut(TrainingRun)`` makes ``RunOut`` a pydantic model with the fields
and types of the dataclass it names (plus any the class body adds), its docstring, the example the OpenAPI document
shows, and ``from_attributes``: a route returns the domain object itself and FastAPI reads it into the model, nested
in another response too. A domain pydantic model is subclassed directly, with its examples in ``model_config``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model


def _default(spec: dataclasses.Field) -> Any:
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return Field(default_factory=spec.default_factory)
    return ...


def domain_response(*examples: dict[str, Any]) -> Callable[[type], type[BaseModel]]:
    """Turn ``class XOut(DomainDataclass)`` into the response model ``XOut`` with these examples."""

    def derive(declared: type) -> type[BaseModel]:
        [domain] = [base for base in declared.__bases__ if dataclasses.is_dataclass(base)]
        hints = typing.get_type_hints(declared)
        fields: dict[str, Any] = {spec.name: (hints[spec.name], _default(spec)) for spec in dataclasses.fields(domain)}
        for name in declared.__dict__.get("__annotations__", {}):
            fields[name] = (hints[name], declared.__dict__.get(name, ...))
        config = ConfigDict(from_attributes=True, json_schema_extra={"examples": list(examples)})
        return create_model(
            declared.__name__, __config__=config, __doc__=declared.__doc__, __module__=declared.__module__, **fields
        )

    return derive
