"""How much a model release may ask of a gateway: its size, the opsets this agent was tested with, and the memory
and time of the capped child that first loads it. Its own module because both the static checks
(``edge_agent.model_checks``, child only) and the loader (``edge_agent.model_loader``) read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: newest opset per domain that this agent was tested with
DEFAULT_MAX_OPSET: dict[str, int] = {"ai.onnx": 21, "ai.onnx.ml": 5}
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: how far a new release's first load may grow the address space of the child that runs it
DEFAULT_CHILD_MEMORY_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True)
class LoaderLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_opset: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_OPSET))
    #: memory and seconds for a new release's first load and golden run (``edge_agent.sandboxed_load``)
    child_memory_bytes: int = DEFAULT_CHILD_MEMORY_BYTES
    child_timeout: float = 60.0
