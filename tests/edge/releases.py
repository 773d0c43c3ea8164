"""Real releases for the edge tests: a small scikit-learn model exported by the cloud's own ONNX export."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cloud.training.onnx_export import export, golden_vectors
from shared.director import format_time
from shared.features import FEATURE_NAMES as SERVED_FEATURES
from shared.features import FEATURE_SET_VERSION
from shared.messages import PredictionType
from shared.release import ReleaseFile

FEATURE_SET = "test-v1"
FEATURE_NAMES = ["temp_mean", "temp_slope", "power_mean", "cycles"]
LABELS = ["none", "heating_element", "thermostat"]


@dataclass(frozen=True)
class BuiltRelease:
    onnx_bytes: bytes
    release: ReleaseFile

    @property
    def release_bytes(self) -> bytes:
        return self.release.to_json()


@functools.cache
def build_release(
    version: str = "1",
    model_name: str = "component_failure",
    seed: int = 0,
    onnx_bytes: bytes | None = None,
    feature_set: str = FEATURE_SET,
    feature_names: tuple[str, ...] = tuple(FEATURE_NAMES),
    impute: bool = True,
) -> BuiltRelease:
    """Train a tiny classifier (different ``seed``, different model) and describe it as the trainer does.

    ``onnx_bytes`` replaces the exported model while keeping the release that describes the real one.
    The imputer lets it serve feature rows with gaps (NaN), as real windows have; without it (``impute``
    False) a gap gives NaN outputs, while the golden vectors, all finite, still pass.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(240, len(feature_names))).astype(np.float32)
    y = np.digitize(X[:, 0] + 0.5 * X[:, 2], [-0.5, 0.7])
    steps = [SimpleImputer()] if impute else []
    estimator = make_pipeline(*steps, StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    exported = export(estimator, len(feature_names), options={"zipmap": False})
    data = onnx_bytes if onnx_bytes is not None else exported.onnx_bytes
    release = ReleaseFile(
        model_name=model_name,
        model_version=version,
        prediction_type=PredictionType.COMPONENT_FAILURE,
        feature_set_version=feature_set,
        feature_names=list(feature_names),
        model_target=f"models/{model_name}/{version}/model.onnx",
        model_sha256=hashlib.sha256(data).hexdigest(),
        model_length=len(data),
        inputs=exported.inputs,
        outputs=exported.outputs,
        output_labels={"probabilities": LABELS},
        golden=golden_vectors(exported.onnx_bytes, X[:6]),
        lineage={"test": True, "seed": seed},
        created_at=format_time(datetime.now(UTC)),
    )
    return BuiltRelease(data, release)


def build_serving_release(version: str = "1", seed: int = 0, impute: bool = True) -> BuiltRelease:
    """A release for the feature set the agent really computes (``shared.features``).

    Real windows leave some features NaN (e.g. the upper element's power when it never ran), so one built
    with ``impute`` False gives NaN outputs in service while passing every check.
    """
    return build_release(
        version, seed=seed, feature_set=FEATURE_SET_VERSION, feature_names=tuple(SERVED_FEATURES), impute=impute
    )
