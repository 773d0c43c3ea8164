"""The static checks of an ONNX model, made on its parsed graph before onnxruntime sees the bytes.

A model file is untrusted input until it passes every check: it is parsed from bytes only, capped in
size, refused if it points at external data, uses a domain other than ``ai.onnx`` / ``ai.onnx.ml``, an
operator outside the allow-list (no control flow, no shape-driven allocation) or a newer opset than we
vetted, fails ``onnx.checker``, or has other inputs and outputs than its release declares.

Only ``edge_agent.model_loader.load_model`` uses this module, and the agent runs that only in the capped
child (``edge_agent.sandboxed_load``): the ``onnx`` package (about 20 MB of the agent's memory with its
operator schemas) is never imported by the agent process itself. Every failure raises ``DirectorRejected``
naming the rule.
"""

from __future__ import annotations

from collections.abc import Iterator

import onnx
from google.protobuf.message import DecodeError

from edge_agent.loader_limits import LoaderLimits
from shared.director import DirectorRejected, RejectRule
from shared.release import ReleaseFile, TensorSpec


def _names(words: str) -> frozenset[str]:
    return frozenset(words.split())


#: operators skl2onnx emits for the estimators we train (trees, linear models, scalers, imputers,
#: normalisers, isolation forests) plus elementwise maths and shape-preserving tensor plumbing
ALLOWED_OPERATORS: dict[str, frozenset[str]] = {
    "ai.onnx.ml": _names(
        "ArrayFeatureExtractor Binarizer FeatureVectorizer Imputer LabelEncoder LinearClassifier "
        "LinearRegressor Normalizer OneHotEncoder Scaler TreeEnsemble TreeEnsembleClassifier "
        "TreeEnsembleRegressor ZipMap"
    ),
    "ai.onnx": _names(
        "Abs Add And ArgMax ArgMin Cast Ceil Clip Concat Constant Div Equal Erf Exp Flatten Floor Gather "
        "GatherElements Gemm Greater GreaterOrEqual Identity IsInf IsNaN Less LessOrEqual Log MatMul Max "
        "Mean Min Mul Neg Not Or Pow Reciprocal ReduceL2 ReduceLogSumExp ReduceMax ReduceMean ReduceMin "
        "ReduceSum ReduceSumSquare Relu Reshape Round Shape Sigmoid Sign Slice Softmax Sqrt Squeeze Sub Sum "
        "Tanh Transpose Unsqueeze Where"
    ),
}
_GRAPH_ATTRIBUTES = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)


def _canonical_domain(domain: str) -> str:
    return "ai.onnx" if domain in ("", "ai.onnx") else domain


def _tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor a graph carries, its subgraphs included, wherever protobuf lets one hide."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("sparse_tensor"):
                yield from (attribute.sparse_tensor.values, attribute.sparse_tensor.indices)
            for sparse in attribute.sparse_tensors:
                yield from (sparse.values, sparse.indices)
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _tensors(subgraph)


def _parse(data: bytes, limits: LoaderLimits) -> onnx.ModelProto:
    if len(data) > limits.max_bytes:
        raise DirectorRejected(RejectRule.ONNX_SIZE, f"model is {len(data)} bytes, the cap is {limits.max_bytes}")
    try:
        return onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise DirectorRejected(RejectRule.ONNX_LOAD, f"not an ONNX model: {exc}") from exc


def _check_no_external_data(model: onnx.ModelProto) -> None:
    graphs = [model.graph]
    for function in model.functions:
        graphs.append(onnx.GraphProto(node=function.node))
    for graph in graphs:
        for tensor in _tensors(graph):
            if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
                raise DirectorRejected(RejectRule.ONNX_EXTERNAL_DATA, f"tensor {tensor.name!r} refers to external data")


def _check_domains(model: onnx.ModelProto) -> None:
    for opset in model.opset_import:
        domain = _canonical_domain(opset.domain)
        if domain not in ALLOWED_OPERATORS:
            raise DirectorRejected(RejectRule.ONNX_DOMAIN, f"opset domain {opset.domain!r} is not allowed")
    for node in model.graph.node:
        if _canonical_domain(node.domain) not in ALLOWED_OPERATORS:
            raise DirectorRejected(
                RejectRule.ONNX_DOMAIN, f"node {node.name!r} ({node.op_type}) uses domain {node.domain!r}"
            )


def _check_operators(model: onnx.ModelProto) -> None:
    if len(model.functions):
        raise DirectorRejected(RejectRule.ONNX_OPERATOR, "model-local functions are not allowed")
    for node in model.graph.node:
        if node.op_type not in ALLOWED_OPERATORS[_canonical_domain(node.domain)]:
            raise DirectorRejected(RejectRule.ONNX_OPERATOR, f"operator {node.op_type} is not on the allow-list")
        if any(attribute.type in _GRAPH_ATTRIBUTES for attribute in node.attribute):
            raise DirectorRejected(RejectRule.ONNX_OPERATOR, f"operator {node.op_type} carries a subgraph")


def _check_opsets(model: onnx.ModelProto, limits: LoaderLimits) -> None:
    for opset in model.opset_import:
        domain = _canonical_domain(opset.domain)
        newest = limits.max_opset.get(domain, 0)
        if opset.version > newest:
            raise DirectorRejected(RejectRule.ONNX_OPSET, f"{domain} opset {opset.version} is newer than {newest}")


def check_model_bytes(data: bytes, limits: LoaderLimits | None = None) -> onnx.ModelProto:
    """Static checks before onnxruntime sees the bytes, in the order of the reject rules."""
    limits = limits or LoaderLimits()
    model = _parse(data, limits)
    _check_no_external_data(model)
    _check_domains(model)
    _check_operators(model)
    _check_opsets(model, limits)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise DirectorRejected(RejectRule.ONNX_LOAD, f"ONNX checker: {str(exc).splitlines()[0]}") from exc
    return model


def graph_specs(values) -> list[TensorSpec]:
    """Name, shape (None for a dynamic dimension) and element type of graph inputs or outputs."""
    specs = []
    for value in values:
        kind = value.type.WhichOneof("value")
        if kind != "tensor_type":
            specs.append(TensorSpec(name=value.name, shape=[], dtype=str(kind)))
            continue
        tensor = value.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        try:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        except KeyError:
            dtype = f"onnx-type-{tensor.elem_type}"
        specs.append(TensorSpec(name=value.name, shape=shape, dtype=dtype))
    return specs


def check_graph(model: onnx.ModelProto, release: ReleaseFile) -> None:
    """The model's inputs and outputs are exactly what the release declares."""
    pairs = (("inputs", model.graph.input, release.inputs), ("outputs", model.graph.output, release.outputs))
    for kind, values, declared in pairs:
        actual = graph_specs(values)
        if actual != declared:
            raise DirectorRejected(
                RejectRule.SCHEMA, f"model {kind} {_describe(actual)} != declared {_describe(declared)}"
            )


def _describe(specs: list[TensorSpec]) -> str:
    return ", ".join(f"{s.name}:{s.dtype}{s.shape}" for s in specs) or "none"
