"""Hardened ONNX loading: a model file is untrusted input until it passes every check here.

Even a correctly signed release is parsed defensively, because a signing key can leak. ``load_model``
makes every check: first the static ones on the parsed graph (``edge_agent.model_checks``: size, external
data, domains, operator allow-list, opsets, declared inputs and outputs); only then does onnxruntime see
the bytes, on the CPU provider with one thread; the release must describe inputs the agent can feed and
the model must reproduce its golden vectors. The agent runs ``load_model`` in its capped child and then
serves the same bytes with ``open_model``, which repeats everything but the static checks, so the agent
process never imports ``onnx``. Every failure raises ``DirectorRejected`` naming the rule.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import onnxruntime as ort
from pydantic import ValidationError

from edge_agent.loader_limits import LoaderLimits
from shared.director import DirectorRejected, RejectRule
from shared.messages import Arm, Prediction
from shared.release import ReleaseFile


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


def check_release(release: ReleaseFile, features: FeatureContract | None) -> None:
    """The release is one the agent can feed: one float32 ``(batch, features)`` input of the features it computes,
    labels that fit their outputs. Needs only the release file, so it runs in the agent too."""
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
    """Every check in order; return the model ready to serve or raise ``DirectorRejected``.

    The agent runs this only in its capped child (``edge_agent.sandboxed_load``), hence ``onnx`` is imported here.
    """
    from edge_agent import model_checks

    model = model_checks.check_model_bytes(data, limits)
    session = create_session(data)
    model_checks.check_graph(model, release)
    return _ready(data, release, features, session)


def open_model(data: bytes, release: ReleaseFile, features: FeatureContract | None = None) -> LoadedModel:
    """Bytes that passed ``load_model`` in the capped child, served by the agent: the onnxruntime session, the
    release's own checks and the golden vectors again, without parsing the graph with ``onnx`` a second time."""
    return _ready(data, release, features, create_session(data))


def _ready(data: bytes, release: ReleaseFile, features: FeatureContract | None, session) -> LoadedModel:
    check_release(release, features)
    try:
        loaded = LoadedModel(release=release, session=session, model_sha256=hashlib.sha256(data).hexdigest())
    except ValidationError as exc:
        raise _reject(RejectRule.SCHEMA, f"release cannot be described in a prediction: {exc}") from exc
    check_golden(loaded)
    return loaded
