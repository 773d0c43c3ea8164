"""Hostile ONNX models, built with ``onnx.helper`` from the real exported model: what a leaked signing key could ship.

Each entry is the real model of ``tests.edge.releases.build_release`` with one malicious or broken change and
the reject rule the gateway must refuse it with. ``hostile_release`` wraps the bytes in the release
file of the good model, exactly what an attacker holding a signing key would publish: a release that
verifies through TUF and names the gateway's own feature set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, external_data_helper, helper, numpy_helper

from edge_agent.loader_limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_OPSET
from shared.director import RejectRule
from tests.edge.releases import BuiltRelease, build_release

INPUT = "features"
OUTPUT = "probabilities"
#: Concat doublings of the 6 golden rows in the allowed-operator bomb: 6 × 2**28 rows of 4 floats, 24 GiB
BOMB_DOUBLINGS = 28


@dataclass(frozen=True)
class HostileModel:
    name: str
    rule: RejectRule
    build: Callable[[], bytes]


def _edited(change: Callable[[onnx.ModelProto], None]) -> Callable[[], bytes]:
    def build() -> bytes:
        model = onnx.load_from_string(build_release().onnx_bytes)
        change(model)
        return model.SerializeToString()

    return build


def _external(location: str) -> Callable[[onnx.ModelProto], None]:
    def change(model: onnx.ModelProto) -> None:
        tensor = helper.make_tensor("weights", TensorProto.FLOAT, [4], bytes(16), raw=True)
        external_data_helper.set_external_data(tensor, location=location, length=16)
        tensor.ClearField("raw_data")  # the values would be read from that file
        model.graph.initializer.append(tensor)

    return change


def _custom_domain(model: onnx.ModelProto) -> None:
    model.opset_import.append(helper.make_opsetid("com.example.evil", 1))
    model.graph.node.append(helper.make_node("Exfiltrate", [INPUT], ["stolen"], domain="com.example.evil"))


def _unknown_operator(model: onnx.ModelProto) -> None:
    model.graph.node.append(helper.make_node("NotAnOnnxOperator", [INPUT], ["whatever"]))


def _reroute_output(model: onnx.ModelProto) -> str:
    """Rename the tensor the last node writes to ``probabilities``, so new nodes can compute the output."""
    raw = f"{OUTPUT}_raw"
    for node in model.graph.node:
        for i, name in enumerate(node.output):
            if name == OUTPUT:
                node.output[i] = raw
    return raw


def _constant_of_shape_bomb(model: onnx.ModelProto) -> None:
    """2**40 floats (4 TiB) of zeros, added to the output so no optimiser can drop them."""
    raw = _reroute_output(model)
    shape = numpy_helper.from_array(np.array([2**20, 2**20], dtype=np.int64), "bomb_shape")
    model.graph.initializer.append(shape)
    model.graph.node.extend(
        [
            helper.make_node("ConstantOfShape", ["bomb_shape"], ["bomb"]),
            helper.make_node("ReduceSum", ["bomb"], ["bomb_sum"], keepdims=0),
            helper.make_node("Add", [raw, "bomb_sum"], [OUTPUT]),
        ]
    )


def _loop(model: onnx.ModelProto) -> None:
    """A Loop that runs 2**62 times doing nothing: a gateway that never finishes loading."""
    raw = _reroute_output(model)
    body = helper.make_graph(
        [helper.make_node("Identity", ["condition"], ["condition_out"])],
        "spin",
        [
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("condition", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("condition_out", TensorProto.BOOL, [])],
    )
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(2**62, dtype=np.int64), "trips"),
            numpy_helper.from_array(np.array(True), "keep_going"),
        ]
    )
    model.graph.node.extend(
        [
            helper.make_node("Loop", ["trips", "keep_going"], [], body=body),
            helper.make_node("Identity", [raw], [OUTPUT]),
        ]
    )


def _over_size_cap(model: onnx.ModelProto) -> None:
    """An unused initializer 1 MiB past the cap (a 65 MiB download for nothing)."""
    padding = np.zeros((DEFAULT_MAX_BYTES + 2**20) // 4, dtype=np.float32)
    model.graph.initializer.append(numpy_helper.from_array(padding, "padding"))


def _truncated() -> bytes:
    data = build_release().onnx_bytes
    return data[: len(data) // 2]


def _newer_opset(model: onnx.ModelProto) -> None:
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = DEFAULT_MAX_OPSET["ai.onnx"] + 1


def _nan_outputs(model: onnx.ModelProto) -> None:
    raw = _reroute_output(model)
    model.graph.initializer.append(numpy_helper.from_array(np.array(np.nan, dtype=np.float32), "nan"))
    model.graph.node.append(helper.make_node("Mul", [raw, "nan"], [OUTPUT]))


def _wrong_input_name(model: onnx.ModelProto) -> None:
    renamed = "sensor_dump"
    model.graph.input[0].name = renamed
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name == INPUT:
                node.input[i] = renamed


def _wrong_output_shape(model: onnx.ModelProto) -> None:
    """Four probability columns, declared so, where the release (and the agent's labels) expect three."""
    raw = _reroute_output(model)
    model.graph.initializer.extend(
        [numpy_helper.from_array(np.array([value], dtype=np.int64), name) for name, value in (("zero", 0), ("one", 1))]
    )
    model.graph.node.extend(
        [
            helper.make_node("Slice", [raw, "zero", "one", "one"], ["first_column"]),
            helper.make_node("Concat", [raw, "first_column"], [OUTPUT], axis=1),
        ]
    )
    model.graph.output[1].type.tensor_type.shape.dim[1].dim_value = 4


def _allowed_operator_bomb(model: onnx.ModelProto) -> None:
    """Only allow-listed operators: each Concat doubles the rows, so the golden run asks for 24 GiB.

    The static checks cannot see it; the capped child process that first runs a release must.
    """
    raw = _reroute_output(model)
    previous = INPUT
    for i in range(BOMB_DOUBLINGS):
        model.graph.node.append(helper.make_node("Concat", [previous, previous], [f"double_{i}"], axis=0))
        previous = f"double_{i}"
    model.graph.initializer.append(numpy_helper.from_array(np.array(0, dtype=np.float32), "zero"))
    model.graph.node.extend(
        [
            helper.make_node("ReduceSum", [previous], ["bomb_sum"], keepdims=0),
            helper.make_node("Mul", ["bomb_sum", "zero"], ["bomb_zero"]),
            helper.make_node("Add", [raw, "bomb_zero"], [OUTPUT]),
        ]
    )


CORPUS = [
    HostileModel(
        "external data path traversal", RejectRule.ONNX_EXTERNAL_DATA, _edited(_external("../../../etc/shadow"))
    ),
    HostileModel("absolute external data path", RejectRule.ONNX_EXTERNAL_DATA, _edited(_external("/etc/shadow"))),
    HostileModel("custom operator domain", RejectRule.ONNX_DOMAIN, _edited(_custom_domain)),
    HostileModel("unknown operator", RejectRule.ONNX_OPERATOR, _edited(_unknown_operator)),
    HostileModel("ConstantOfShape memory bomb", RejectRule.ONNX_OPERATOR, _edited(_constant_of_shape_bomb)),
    HostileModel("Loop", RejectRule.ONNX_OPERATOR, _edited(_loop)),
    HostileModel("over the size cap", RejectRule.ONNX_SIZE, _edited(_over_size_cap)),
    HostileModel("truncated file", RejectRule.ONNX_LOAD, _truncated),
    HostileModel("opset newer than allowed", RejectRule.ONNX_OPSET, _edited(_newer_opset)),
    HostileModel("NaN outputs", RejectRule.GOLDEN, _edited(_nan_outputs)),
    HostileModel("wrong input name", RejectRule.SCHEMA, _edited(_wrong_input_name)),
    HostileModel("wrong output shape", RejectRule.SCHEMA, _edited(_wrong_output_shape)),
    HostileModel("allowed-operator memory bomb", RejectRule.ONNX_RESOURCES, _edited(_allowed_operator_bomb)),
]


def hostile_release(version: str, onnx_bytes: bytes) -> BuiltRelease:
    """The good model's release file, describing ``onnx_bytes`` instead (hash and length)."""
    return build_release(version, onnx_bytes=onnx_bytes)
