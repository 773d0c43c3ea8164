"""The hot channel, ``up/features``, validated into columns instead of one pydantic object per row.

The contract is still ``shared.messages.FeatureBatch``: the wire model below is a subclass of it that only swaps
the row type for a TypedDict with the same fields and constraints, validated in Rust. What the contract checks in
Python per row is done here once per batch: device ids through ``shared.topics.validate_id`` once per distinct
id, timestamps required to carry an offset and to lie in the contract's span in Rust and turned to UTC text once
per distinct instant; values are checked finite and within float32's range in Rust, their count by the contract's
own validator.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field, field_validator
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from cloud.ingest.feature_codec import FLOAT32_MAX
from cloud.storage import iso
from shared.limits import EARLIEST, LATEST
from shared.messages import FeatureBatch
from shared.topics import validate_id


class WireFeatureRow(TypedDict):
    """``shared.messages.FeatureRow`` as a dict; ``device_id`` is checked per distinct id after validation."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    device_id: str
    device_type: Annotated[str, Field(min_length=1, max_length=64)]
    window_end: Annotated[AwareDatetime, Field(ge=EARLIEST, lt=LATEST)]  # the contract's span
    #: the contract's finite numbers, also within float32's range: beyond it they have no stored form
    values: list[Annotated[float, Field(allow_inf_nan=False, ge=-FLOAT32_MAX, le=FLOAT32_MAX)] | None]


class _WireFeatureBatch(FeatureBatch):
    rows: list[WireFeatureRow] = Field(min_length=1, max_length=1000)

    @field_validator("rows")
    @classmethod
    def _aligned(cls, rows: list[WireFeatureRow], info) -> list[WireFeatureRow]:
        """The contract's own check (and message), on dicts."""
        width = len(info.data.get("feature_names") or [])
        for row in rows:
            if len(row["values"]) != width:
                raise ValueError(f"row for {row['device_id']} has {len(row['values'])} values for {width} names")
        return rows


_columns = itemgetter("device_id", "device_type", "window_end", "values")


@dataclass(slots=True)
class FeatureFrame:
    """One ``up/features`` message, validated, as the columns the feature store writes.

    Values stay the validated lists: the store packs a whole flush's rows with one numpy call, since numpy's
    fixed cost per call would outweigh the work for a message of a few rows.
    """

    msg_id: str
    gateway_id: str
    feature_set_version: str
    feature_names: list[str]
    device_ids: tuple[str, ...]
    device_types: tuple[str, ...]
    window_ends: list[str]  # cloud.storage.iso text (UTC)
    values: tuple[list[float | None], ...]  # each as long as the feature names, all finite and float32-sized

    def __len__(self) -> int:
        return len(self.device_ids)


def parse_feature_frame(payload: bytes) -> FeatureFrame:
    """Validate an ``up/features`` payload against the contract; raise ValueError (ValidationError is one)."""
    batch = _WireFeatureBatch.model_validate_json(payload)
    device_ids, device_types, instants, values = zip(*map(_columns, batch.rows), strict=True)
    for device_id in set(device_ids):
        _valid_device_id(device_id)
    return FeatureFrame(
        msg_id=batch.msg_id,
        gateway_id=batch.gateway_id,
        feature_set_version=batch.feature_set_version,
        feature_names=batch.feature_names,
        device_ids=device_ids,
        device_types=device_types,
        window_ends=list(map(_utc_text, instants)),
        values=values,
    )


#: window ends repeat across rows and messages (one per feature interval): format each once
_utc_text = lru_cache(maxsize=4096)(iso)


@lru_cache(maxsize=65536)
def _valid_device_id(device_id: str) -> None:
    """A fleet's device ids repeat in every batch: check each once (only valid ids are cached)."""
    validate_id(device_id, "device id")
