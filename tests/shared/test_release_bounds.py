"""A release is bounded as the wire is: one the edge could install but whose predictions or status the cloud would
refuse (a model name past 64 characters, labels past 64) is refused where releases are read."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared.release import ReleaseFile
from tests.edge.releases import build_release


@pytest.mark.parametrize(
    "change",
    [
        {"model_name": "m" * 65},
        {"model_version": "9" * 33},
        {"feature_names": ["f" * 65]},
        {"output_labels": {"probabilities": [f"label-{i}" for i in range(65)]}},
        {"device_types": ["t" * 65]},
    ],
    ids=["model name", "model version", "feature name", "labels", "device type"],
)
def test_a_release_the_wire_could_not_carry_is_refused(change):
    document = json.loads(build_release().release.model_dump_json()) | change
    with pytest.raises(ValidationError, match=next(iter(change))):
        ReleaseFile.model_validate_json(json.dumps(document))


def test_a_release_at_the_bounds_is_read():
    change = {"model_name": "m" * 64, "model_version": "9" * 32, "device_types": ["t" * 64]}
    document = json.loads(build_release().release.model_dump_json()) | change
    assert ReleaseFile.model_validate_json(json.dumps(document)).model_name == "m" * 64
