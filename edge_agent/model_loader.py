"""Hardened ONNX loading: a model file is untrusted input until it passes every check here.

Even a correctly signed release is parsed defensively, because a signing key can leak: the file
is loaded from bytes only, capped in size, refused if it points at external data, uses a domain
other than ``ai.onnx`` / ``ai.onnx.ml``, an operator outside the allow-list (no control flow, no
shape-driven allocation) or a newer opset than we vetted. Only then does onnxruntime see it, on the
CPU provider with one thread. The model must then match the release's declared schema and
reproduce its golden vectors. Every failure raises ``DirectorRejected`` naming the rule.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf.message import DecodeError
from pydantic import ValidationError

from shared.director import DirectorRejected, RejectRule
from shared.messages import Arm, Prediction
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
#: newest opset per domain that this agent was tested with
DEFAULT_MAX_OPSET: dict[str, int] = {"ai.onnx": 21, "ai.onnx.ml": 5}
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: how far a new release's first load may grow the address space of the child that runs it
DEFAULT_CHILD_MEMORY_BYTES = 1024 * 1024 * 1024
_GRAPH_ATTRIBUTES = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)


@dataclass(frozen=True)
class LoaderLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_opset: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_OPSET))
    #: memory and seconds for a new release's first load and golden run (``edge_agent.sandboxed_load``)
    child_memory_bytes: int = DEFAULT_CHILD_MEMORY_BYTES
    child_timeout: float = 60.0


@dataclass(frozen=True)
class FeatureContract:
    """The features this agent computes: a release must be trained on exactly these."""

    version: str
    names: tuple[str, ...]


@dataclass
class LoadedModel:
    """A verified release with its onnxruntime session."""

    release: ReleaseFile
    session: ort.InferenceSession
    model_sha256: str
    #: the outputs predictions report: the labelled ones, or every float output of a release without labels
    #: (onnxruntime skips whatever is not fetched, e.g. a classifier's label output)
    served_outputs: tuple[str, ...] = field(init=False)
    #: the column labels of ``served_outputs`` when the release names them all
    served_labels: tuple[str, ...] | None = field(init=False)
    #: a validated prediction of this release; each real one is a copy with the per-heater fields replaced,
    #: so the release's part (type, name, version) is validated once here, not per prediction
    prediction_template: Prediction = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.prediction_template = Prediction(
            prediction_id="0" * 32,
            device_id="template",
            device_type="template",
            prediction_type=self.release.prediction_type,
            model_name=self.release.model_name,
            model_version=self.release.model_version,
            arm=Arm.CHAMPION,
            outputs={},
            latency_ms=0.0,
            made_at=datetime.fromtimestamp(0, UTC),
        )
        self._input_name = self.release.inputs[0].name
        self._output_names = [meta.name for meta in self.session.get_outputs()]
        labels = self.release.output_labels
        if labels:
            self.served_outputs = tuple(labels)
            self.served_labels = tuple(label for name in labels for label in labels[name])
        else:
            self.served_outputs = tuple(spec.name for spec in self.release.outputs if spec.dtype.startswith("float"))
            self.served_labels = None
        self._served_names = list(self.served_outputs)

    @property
    def name(self) -> str:
        return self.release.model_name

    @property
    def version(self) -> str:
        return self.release.model_version

    def run(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Every output by name for a ``(n, n_features)`` batch (NaN marks a missing feature)."""
        values = self.session.run(self._output_names, {self._input_name: np.ascontiguousarray(rows, dtype=np.float32)})
        return {name: np.asarray(value) for name, value in zip(self._output_names, values, strict=True)}

    def run_served(self, rows: np.ndarray) -> list[np.ndarray]:
        """Only the ``served_outputs``, in that order: what serving needs, with nothing around it to slow it.

        Features are float32 already; onnxruntime reads strided arrays itself, so nothing is copied.
        """
        feed = rows if rows.dtype == np.float32 else rows.astype(np.float32)
        return self.session.run(self._served_names, {self._input_name: feed})


def _reject(rule: RejectRule, detail: str) -> DirectorRejected:
    return DirectorRejected(rule, detail)


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
        raise _reject(RejectRule.ONNX_SIZE, f"model is {len(data)} bytes, the cap is {limits.max_bytes}")
    try:
        return onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise _reject(RejectRule.ONNX_LOAD, f"not an ONNX model: {exc}") from exc


def _check_no_external_data(model: onnx.ModelProto) -> None:
    graphs = [model.graph]
    for function in model.functions:
        graphs.append(onnx.GraphProto(node=function.node))
    for graph in graphs:
        for tensor in _tensors(graph):
            if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
                raise _reject(RejectRule.ONNX_EXTERNAL_DATA, f"tensor {tensor.name!r} refers to external data")


def _check_domains(model: onnx.ModelProto) -> None:
    for opset in model.opset_import:
        domain = _canonical_domain(opset.domain)
        if domain not in ALLOWED_OPERATORS:
            raise _reject(RejectRule.ONNX_DOMAIN, f"opset domain {opset.domain!r} is not allowed")
    for node in model.graph.node:
        if _canonical_domain(node.domain) not in ALLOWED_OPERATORS:
            raise _reject(RejectRule.ONNX_DOMAIN, f"node {node.name!r} ({node.op_type}) uses domain {node.domain!r}")


def _check_operators(model: onnx.ModelProto) -> None:
    if len(model.functions):
        raise _reject(RejectRule.ONNX_OPERATOR, "model-local functions are not allowed")
    for node in model.graph.node:
        if node.op_type not in ALLOWED_OPERATORS[_canonical_domain(node.domain)]:
            raise _reject(RejectRule.ONNX_OPERATOR, f"operator {node.op_type} is not on the allow-list")
        if any(attribute.type in _GRAPH_ATTRIBUTES for attribute in node.attribute):
            raise _reject(RejectRule.ONNX_OPERATOR, f"operator {node.op_type} carries a subgraph")


def _check_opsets(model: onnx.ModelProto, limits: LoaderLimits) -> None:
    for opset in model.opset_import:
        domain = _canonical_domain(opset.domain)
        newest = limits.max_opset.get(domain, 0)
        if opset.version > newest:
            raise _reject(RejectRule.ONNX_OPSET, f"{domain} opset {opset.version} is newer than {newest}")


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
        raise _reject(RejectRule.ONNX_LOAD, f"ONNX checker: {str(exc).splitlines()[0]}") from exc
    return model


def create_session(data: bytes) -> ort.InferenceSession:
    """onnxruntime from bytes on the CPU provider, one thread, external data confined to an empty folder."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    options.add_session_config_entry("session.allow_released_opsets_only", "1")
    with tempfile.TemporaryDirectory(prefix="onnx-no-external-data-") as empty:
        # onnxruntime already refuses external data for a model given as bytes; should that ever
        # change, it would resolve paths only inside this empty folder.
        options.add_session_config_entry("session.model_external_initializers_file_folder_path", empty)
        try:
            return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for every load failure
            raise _reject(RejectRule.ONNX_LOAD, f"onnxruntime: {str(exc).splitlines()[0]}") from exc


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


def check_schema(model: onnx.ModelProto, release: ReleaseFile, features: FeatureContract | None) -> None:
    """The model's inputs and outputs are exactly what the release declares, fed by features we compute."""
    pairs = (("inputs", model.graph.input, release.inputs), ("outputs", model.graph.output, release.outputs))
    for kind, values, declared in pairs:
        actual = graph_specs(values)
        if actual != declared:
            raise _reject(RejectRule.SCHEMA, f"model {kind} {_describe(actual)} != declared {_describe(declared)}")
    if len(release.inputs) != 1 or release.inputs[0].dtype != "float32" or len(release.inputs[0].shape) != 2:
        raise _reject(RejectRule.SCHEMA, "the agent feeds exactly one float32 input of shape (batch, features)")
    width = release.inputs[0].shape[1]
    if width is not None and width != len(release.feature_names):
        raise _reject(RejectRule.SCHEMA, f"input has {width} columns for {len(release.feature_names)} feature names")
    if features is not None and (
        release.feature_set_version != features.version or tuple(release.feature_names) != features.names
    ):
        raise _reject(
            RejectRule.SCHEMA,
            f"release uses feature set {release.feature_set_version!r}; this agent computes {features.version!r}",
        )
    outputs = {spec.name: spec for spec in release.outputs}
    for name, labels in release.output_labels.items():
        if name not in outputs:
            raise _reject(RejectRule.SCHEMA, f"output_labels names {name!r}, which is not an output")
        columns = outputs[name].shape[-1] if outputs[name].shape else None
        if columns is not None and columns != len(labels):
            raise _reject(RejectRule.SCHEMA, f"output {name!r} has {columns} columns for {len(labels)} labels")


def _describe(specs: list[TensorSpec]) -> str:
    return ", ".join(f"{s.name}:{s.dtype}{s.shape}" for s in specs) or "none"


def check_golden(loaded: LoadedModel) -> None:
    """The model reproduces the outputs the trainer recorded for the golden inputs."""
    golden = loaded.release.golden
    rows = np.asarray(golden.inputs, dtype=np.float32)
    try:
        outputs = loaded.run(rows)
    except Exception as exc:  # a model that cannot run its own golden inputs is as bad as a wrong answer
        raise _reject(RejectRule.GOLDEN, f"golden inputs do not run: {str(exc).splitlines()[0]}") from exc
    for name, expected_rows in golden.expected.items():
        if name not in outputs:
            raise _reject(RejectRule.GOLDEN, f"golden vectors expect output {name!r}, which the model lacks")
        expected = np.asarray(expected_rows, dtype=np.float64)
        actual = outputs[name].reshape(len(rows), -1).astype(np.float64)
        if actual.shape != expected.shape:
            raise _reject(RejectRule.GOLDEN, f"output {name!r} has shape {actual.shape}, expected {expected.shape}")
        if not np.all(np.isfinite(actual)):
            raise _reject(RejectRule.GOLDEN, f"output {name!r} is NaN or infinite for golden inputs")
        error = np.abs(actual - expected)
        if not np.all(error <= golden.abs_tolerance):  # NaN fails too
            worst = float(np.max(np.where(np.isnan(error), np.inf, error)))
            raise _reject(
                RejectRule.GOLDEN, f"output {name!r} differs by up to {worst:.3g} (tolerance {golden.abs_tolerance})"
            )


def load_model(
    data: bytes,
    release: ReleaseFile,
    features: FeatureContract | None = None,
    limits: LoaderLimits | None = None,
) -> LoadedModel:
    """Every check in order; return the model ready to serve or raise ``DirectorRejected``."""
    model = check_model_bytes(data, limits)
    session = create_session(data)
    check_schema(model, release, features)
    try:
        loaded = LoadedModel(release=release, session=session, model_sha256=hashlib.sha256(data).hexdigest())
    except ValidationError as exc:
        raise _reject(RejectRule.SCHEMA, f"release cannot be described in a prediction: {exc}") from exc
    check_golden(loaded)
    return loaded
