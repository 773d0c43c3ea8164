"""An isolation forest as one ONNX tree ensemble, for ``onnx_export.export`` (skl2onnx's converter for it is replaced).

skl2onnx converts each of a forest's trees on its own: a feature ``Gather``, a ``TreeEnsembleRegressor`` that yields
the leaf's id, two ``LabelEncoder``s mapping it to the leaf's depth and sample count, and the arithmetic of
``c(n)``, about 40 nodes a tree (4,006 for 100 trees). onnxruntime keeps kernels and buffers per node: on a gateway
that session took 24.5 MB. Every per-leaf quantity is known when the forest is fitted, so the whole score is one
``TreeEnsembleRegressor`` summing, per tree, ``(depth + c(leaf samples) - 1) / (trees * c(max_samples))`` (the
leaf's share of scikit-learn's normalised path length), then ``score_samples = -2^-sum`` and ``decision_function =
score_samples - offset_``, as scikit-learn computes them. The outputs are skl2onnx's: ``label`` (1 normal,
-1 outlier) and ``scores`` (``decision_function``).
"""

from __future__ import annotations

import numpy as np
from skl2onnx.algebra.onnx_ops import (
    OnnxAdd,
    OnnxCast,
    OnnxLess,
    OnnxMul,
    OnnxNeg,
    OnnxPow,
    OnnxTreeEnsembleRegressor_1,
)
from skl2onnx.common.data_types import guess_numpy_type
from skl2onnx.common.tree_ensemble import add_node, get_default_tree_regressor_attribute_pairs
from skl2onnx.proto import onnx_proto
from sklearn.ensemble._iforest import _average_path_length


def _ensemble_attributes(forest, dtype) -> dict:
    """One regression tree per estimator, each leaf worth its share; a split names the original feature column, so
    trees grown on a subset of the features (``max_features`` < 1) need no ``Gather``."""
    attributes = get_default_tree_regressor_attribute_pairs()
    attributes["n_targets"] = 1
    attributes["aggregate_function"] = "SUM"
    denominator = len(forest.estimators_) * _average_path_length([forest.max_samples_])[0]
    for tree_id, (estimator, features) in enumerate(zip(forest.estimators_, forest.estimators_features_, strict=True)):
        tree = estimator.tree_
        # what scikit-learn adds per tree for a row ending in each node (``IsolationForest._compute_score_samples``)
        shares = (tree.compute_node_depths() + _average_path_length(tree.n_node_samples) - 1.0) / denominator
        for node in range(tree.node_count):
            leaf = tree.children_left[node] == -1
            add_node(
                attributes,
                False,
                tree_id,
                1.0,
                node,
                0 if leaf else int(features[tree.feature[node]]),
                "LEAF" if leaf else "BRANCH_LEQ",
                0.0 if leaf else tree.threshold[node],
                0 if leaf else int(tree.children_left[node]),
                0 if leaf else int(tree.children_right[node]),
                np.array([shares[node]]),
                0,
                False,
                adjust_threshold_for_sklearn=True,
                dtype=dtype,
            )
    return attributes


def convert_isolation_forest(scope, operator, container) -> None:
    """skl2onnx's converter signature; ``label`` and ``scores`` as skl2onnx's own converter names them."""
    forest = operator.raw_operator
    opset = container.target_opset
    dtype = guess_numpy_type(operator.inputs[0].type)
    path_length = OnnxTreeEnsembleRegressor_1(operator.inputs[0], op_version=1, **_ensemble_attributes(forest, dtype))
    score_samples = OnnxNeg(
        OnnxPow(np.array([2], dtype=dtype), OnnxNeg(path_length, op_version=opset), op_version=opset), op_version=opset
    )
    decision = OnnxAdd(
        score_samples,
        np.array([-forest.offset_], dtype=dtype),
        op_version=opset,
        output_names=operator.outputs[1].full_name,
    )
    outlier = OnnxCast(
        OnnxLess(decision, np.array([0], dtype=dtype), op_version=opset),
        to=onnx_proto.TensorProto.INT64,
        op_version=opset,
    )
    label = OnnxAdd(
        OnnxMul(outlier, np.array([-2], dtype=np.int64), op_version=opset),
        np.array([1], dtype=np.int64),
        op_version=opset,
        output_names=operator.outputs[0].full_name,
    )
    label.add_to(scope, container)
    decision.add_to(scope, container)
