"""scikit-learn → ONNX with skl2onnx, checked in full and against the fitted model.

The golden vectors are computed by onnxruntime from the exported bytes themselves, so the edge
reproduces exactly what the trainer saw and any corruption or wrong runtime shows up before activation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from skl2onnx.common.tree_ensemble import sklearn_threshold
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor, IsolationForest

from cloud.training.isolation_forest_onnx import convert_isolation_forest
from shared.release import GoldenVectors, TensorSpec

INPUT_NAME = "features"
#: Opsets the edge accepts; pinned so a newer skl2onnx cannot silently raise them.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
#: our converters where skl2onnx's serve the edge badly (``cloud.training.isolation_forest_onnx``)
_CONVERTERS = {IsolationForest: convert_isolation_forest}
_DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64", onnx.TensorProto.DOUBLE: "float64"}


@dataclass(frozen=True)
class ExportedModel:
    onnx_bytes: bytes
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


def _specs(values) -> list[TensorSpec]:
    specs = []
    for value in values:
        tensor = value.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        specs.append(
            TensorSpec(name=value.name, shape=shape, dtype=_DTYPES.get(tensor.elem_type, str(tensor.elem_type)))
        )
    return specs


def _negate(model: onnx.ModelProto, output: str) -> None:
    """Serve ``-output`` under the same name (one ``Neg`` node), e.g. an outlier score where higher is worse."""
    raw = f"{output}_before_negation"
    for node in model.graph.node:  # whatever made or read ``output`` now makes or reads the raw value
        node.output[:] = [raw if name == output else name for name in node.output]
        node.input[:] = [raw if name == output else name for name in node.input]
    model.graph.node.append(onnx.helper.make_node("Neg", [raw], [output], name=f"negate_{output}"))


def _exact_histogram_thresholds(model: onnx.ModelProto, estimator) -> None:
    """Make a histogram gradient boosting's float32 ONNX splits send every float32 value where scikit-learn does.

    scikit-learn compares a value with a float64 threshold (a midpoint between two training values); skl2onnx
    rounds it to the nearest float32 (sklearn-onnx issue 1192), which for two training values one float32 step
    apart is the upper value itself, so every row holding it took the other branch: a retraining run in the demo
    was refused for a 0.058 probability gap. Each split gets the largest float32 at or below its threshold, as
    skl2onnx already does for the other tree ensembles.
    """
    if not isinstance(estimator, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        return
    # the converter writes the trees' nodes in this order: iteration, then class, then node (``_predictors`` is
    # what skl2onnx itself reads; a layout change fails the length check below, never silently)
    nodes = [node for predictors in estimator._predictors for predictor in predictors for node in predictor.nodes]
    [ensemble] = [node for node in model.graph.node if node.op_type.startswith("TreeEnsemble")]
    values = next(a for a in ensemble.attribute if a.name == "nodes_values")
    if len(values.floats) != len(nodes):
        raise ValueError(f"the ONNX tree ensemble has {len(values.floats)} nodes, scikit-learn's {len(nodes)}")
    for index, node in enumerate(nodes):
        if not node["is_leaf"]:
            # a float64 scalar, not a Python float: NumPy 2 would compare a Python float with it as a float32
            values.floats[index] = sklearn_threshold(np.float64(node["num_threshold"]), np.float32, "BRANCH_LEQ")


def export(
    estimator,
    n_features: int,
    options: dict | None = None,
    negate: tuple[str, ...] = (),
    metadata: dict[str, str] | None = None,
) -> ExportedModel:
    """Convert, run ``onnx.checker`` with ``full_check``, and describe inputs and outputs.

    ``negate`` names outputs served negated; ``metadata`` goes into the model's ``metadata_props`` (what an
    evaluator needs to read the model, e.g. alert thresholds), so it travels inside the signed bytes.
    """
    model = convert_sklearn(
        estimator,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        options={id(estimator): options} if options else None,
        target_opset=TARGET_OPSET,
        custom_conversion_functions=_CONVERTERS,
    )
    _exact_histogram_thresholds(model, estimator)
    for output in negate:
        _negate(model, output)
    if metadata:
        onnx.helper.set_model_props(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    return ExportedModel(model.SerializeToString(), _specs(model.graph.input), _specs(model.graph.output))


def metadata(onnx_bytes: bytes) -> dict[str, str]:
    """The ``metadata_props`` ``export`` wrote into the model."""
    return {prop.key: prop.value for prop in onnx.load_from_string(onnx_bytes).metadata_props}


def session(onnx_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def golden_vectors(onnx_bytes: bytes, rows: np.ndarray, abs_tolerance: float = 1e-4) -> GoldenVectors:
    """Expected outputs of ``rows`` (float outputs only), computed by onnxruntime from these bytes."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    if not np.isfinite(rows).all():
        raise ValueError("golden rows must be complete: JSON cannot carry NaN")
    sess = session(onnx_bytes)
    results = sess.run(None, {INPUT_NAME: rows})
    expected = {}
    for meta, value in zip(sess.get_outputs(), results, strict=True):
        array = np.asarray(value)
        if array.dtype.kind == "f":
            expected[meta.name] = array.reshape(len(rows), -1).astype(float).tolist()
    return GoldenVectors(inputs=rows.astype(float).tolist(), expected=expected, abs_tolerance=abs_tolerance)
