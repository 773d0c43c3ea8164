"""The release file: a TUF target (JSON) that describes one model version.

It names the ONNX target, declares the input/output schema the edge checks the model against,
carries golden vectors the edge must reproduce before activating, and records lineage.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from shared.limits import Name, Version
from shared.messages import PredictionType

RELEASE_SCHEMA = 1


def release_target_path(model_name: str, version: str) -> str:
    """TUF target path of a version's release file."""
    return f"models/{model_name}/{version}/release.json"


def model_target_path(model_name: str, version: str) -> str:
    """TUF target path of a version's ONNX file."""
    return f"models/{model_name}/{version}/model.onnx"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Doc):
    name: str
    #: None marks a dynamic dimension (the batch axis)
    shape: list[int | None]
    dtype: str = "float32"


class GoldenVectors(_Doc):
    """Inputs with the outputs the trainer got from the same ONNX file in onnxruntime."""

    inputs: list[list[float]] = Field(min_length=1)
    #: output name → one row of expected values per input row
    expected: dict[str, list[list[float]]]
    abs_tolerance: float = Field(1e-4, gt=0)


class ReleaseFile(_Doc):
    release_schema: int = RELEASE_SCHEMA
    #: bounded as the wire bounds them: a release whose predictions or status the cloud would refuse is refused here
    model_name: Name
    model_version: Version
    prediction_type: PredictionType
    feature_set_version: str = Field(min_length=1, max_length=16)
    feature_names: list[Name] = Field(min_length=1, max_length=1024)
    #: TUF target path of the ONNX file this release describes
    model_target: str
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    model_length: int = Field(gt=0)
    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[TensorSpec] = Field(min_length=1)
    #: what each output means, e.g. {"probabilities": ["heating_element", ...]}
    output_labels: dict[str, Annotated[list[Name], Field(max_length=64)]] = Field(default_factory=dict)
    golden: GoldenVectors
    device_types: list[Name] = Field(default_factory=list)
    lineage: dict[str, Any] = Field(default_factory=dict)
    created_at: str

    def to_json(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=1).encode()
