"""The hardened loader with crafted ONNX files: each bad file is refused with its own rule."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_agent.model_loader import FeatureContract, LoaderLimits, load_model
from shared.director import DirectorRejected, RejectRule
from shared.release import GoldenVectors, TensorSpec
from tests.edge.releases import FEATURE_NAMES, FEATURE_SET, build_release


def _rule(onnx_bytes: bytes, release, **kwargs) -> RejectRule:
    with pytest.raises(DirectorRejected) as caught:
        load_model(onnx_bytes, release, **kwargs)
    return caught.value.rule


def _modified(change) -> bytes:
    """The real exported model with one change applied to its protobuf."""
    model = onnx.load_from_string(build_release().onnx_bytes)
    change(model)
    return model.SerializeToString()


def test_a_good_release_loads_and_serves_its_golden_rows():
    built = build_release()
    loaded = load_model(built.onnx_bytes, built.release, features=FeatureContract(FEATURE_SET, tuple(FEATURE_NAMES)))
    outputs = loaded.run(np.asarray(built.release.golden.inputs, dtype=np.float32))
    assert outputs["probabilities"].shape == (6, 3)
    np.testing.assert_allclose(outputs["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
    assert loaded.name == "component_failure" and loaded.version == "1"


def test_garbage_is_not_an_onnx_model():
    assert _rule(b"\x08\x07not a model at all", build_release().release) is RejectRule.ONNX_LOAD


def test_oversized_model_is_refused_before_parsing():
    built = build_release()
    assert _rule(built.onnx_bytes, built.release, limits=LoaderLimits(max_bytes=100)) is RejectRule.ONNX_SIZE


def test_external_data_is_refused():
    def point_outside(model: onnx.ModelProto) -> None:
        tensor = numpy_helper.from_array(np.ones(4, dtype=np.float32), "smuggled")
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        tensor.external_data.add(key="location", value="../../etc/shadow")
        model.graph.initializer.append(tensor)

    assert _rule(_modified(point_outside), build_release().release) is RejectRule.ONNX_EXTERNAL_DATA


def test_external_data_hidden_in_a_constant_attribute_is_refused():
    def constant_outside(model: onnx.ModelProto) -> None:
        tensor = numpy_helper.from_array(np.ones(4, dtype=np.float32), "c")
        tensor.ClearField("raw_data")
        tensor.external_data.add(key="location", value="weights.bin")
        model.graph.node.append(helper.make_node("Constant", [], ["unused"], value=tensor))

    assert _rule(_modified(constant_outside), build_release().release) is RejectRule.ONNX_EXTERNAL_DATA


def test_custom_domain_is_refused():
    def custom_op(model: onnx.ModelProto) -> None:
        model.opset_import.append(helper.make_opsetid("com.example.evil", 1))
        model.graph.node.append(helper.make_node("Exfiltrate", ["features"], ["x"], domain="com.example.evil"))

    assert _rule(_modified(custom_op), build_release().release) is RejectRule.ONNX_DOMAIN


@pytest.mark.parametrize("op_type", ["ConstantOfShape", "Loop", "Scan", "If", "RandomNormal"])
def test_operators_off_the_allow_list_are_refused(op_type: str):
    def add_op(model: onnx.ModelProto) -> None:
        model.graph.node.append(helper.make_node(op_type, ["features"], ["x"]))

    assert _rule(_modified(add_op), build_release().release) is RejectRule.ONNX_OPERATOR


def test_newer_opset_is_refused():
    def newer(model: onnx.ModelProto) -> None:
        for opset in model.opset_import:
            if opset.domain in ("", "ai.onnx"):
                opset.version = 30

    assert _rule(_modified(newer), build_release().release) is RejectRule.ONNX_OPSET


def test_a_model_that_does_not_match_its_declared_schema_is_refused():
    built = build_release()
    wider = built.release.model_copy(update={"inputs": [TensorSpec(name="features", shape=[None, 5])]})
    assert _rule(built.onnx_bytes, wider) is RejectRule.SCHEMA
    renamed = built.release.model_copy(
        update={"outputs": [built.release.outputs[0], TensorSpec(name="scores", shape=[None, 3])]}
    )
    assert _rule(built.onnx_bytes, renamed) is RejectRule.SCHEMA
    too_few_labels = built.release.model_copy(update={"output_labels": {"probabilities": ["none", "x"]}})
    assert _rule(built.onnx_bytes, too_few_labels) is RejectRule.SCHEMA


def test_a_release_whose_names_cannot_go_in_a_prediction_is_refused():
    """Predictions copy the release's name and version unvalidated, so the loader checks them once."""
    built = build_release()
    too_long = built.release.model_copy(update={"model_version": "9" * 33})
    assert _rule(built.onnx_bytes, too_long) is RejectRule.SCHEMA


def test_a_release_for_other_features_is_refused():
    built = build_release()
    other = FeatureContract("v9", tuple(FEATURE_NAMES))
    assert _rule(built.onnx_bytes, built.release, features=other) is RejectRule.SCHEMA


def test_golden_mismatch_is_refused():
    built = build_release()
    golden = built.release.golden
    shifted = {name: [[v + 0.01 for v in row] for row in rows] for name, rows in golden.expected.items()}
    wrong = built.release.model_copy(
        update={"golden": GoldenVectors(inputs=golden.inputs, expected=shifted, abs_tolerance=golden.abs_tolerance)}
    )
    assert _rule(built.onnx_bytes, wrong) is RejectRule.GOLDEN


def test_another_model_with_the_same_schema_fails_the_golden_check():
    impostor = build_release(seed=7).onnx_bytes
    assert _rule(impostor, build_release(seed=0).release) is RejectRule.GOLDEN
