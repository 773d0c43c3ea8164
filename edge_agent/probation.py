"""Probation: a newly activated release must serve enough good predictions before it is committed.

docs/architecture.md: a new release is on probation until it has served enough predictions within its
latency and output bounds; only then is it reported committed. A prediction out of bounds (an
output missing or not finite, a probability outside [0, 1]) or a batch slower than the bound fails
probation at once, and the store swaps back to the last known good release and reports it.
Counts are kept in memory: after a restart a release still on probation starts it again.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence

from edge_agent.config import ProbationPolicy
from edge_agent.events import AgentEvent, EventSink, log_event
from edge_agent.model_loader import LoadedModel
from edge_agent.model_store import ModelStore
from shared.messages import EventKind, Prediction

log = logging.getLogger(__name__)

#: outputs whose values are probabilities, so bounded by [0, 1]
_PROBABILITY_OUTPUTS = ("probabilities", "probability", "output_probability")
_SLACK = 1e-4


def bounds_problem(model: LoadedModel, prediction: Prediction) -> str | None:
    release = model.release
    for output, labels in release.output_labels.items():
        for label in labels:
            value = prediction.outputs.get(label)
            if value is None or not math.isfinite(value):
                return f"output {label!r} missing or not finite for {prediction.device_id}"
            if output in _PROBABILITY_OUTPUTS and not -_SLACK <= value <= 1 + _SLACK:
                return f"probability {label!r} = {value} for {prediction.device_id}"
    if not release.output_labels and not prediction.outputs:
        return f"no finite output for {prediction.device_id}"
    return None


class Probation:
    """Decides, batch by batch, whether the release each model runs is committed or rolled back."""

    def __init__(self, store: ModelStore, policy: ProbationPolicy | None = None, on_event: EventSink = log_event):
        self.store = store
        self.policy = policy or ProbationPolicy()
        self.on_event = on_event
        self._served: Counter[tuple[str, str]] = Counter()
        self._failed: set[tuple[str, str]] = set()

    def observe(self, model: LoadedModel, predictions: Sequence[Prediction]) -> None:
        """One batch of ``model``'s predictions (all from one run of it)."""
        pointer = self.store.pointer(model.name)
        key = (model.name, model.version)
        if not predictions or pointer is None or pointer.version != model.version or pointer.committed:
            return
        if key in self._failed:
            return
        problem = next(filter(None, (bounds_problem(model, p) for p in predictions)), None)
        latency = predictions[0].latency_ms
        if problem is None and latency > self.policy.max_batch_latency_ms:
            problem = f"a batch took {latency:.0f} ms (bound {self.policy.max_batch_latency_ms:.0f} ms)"
        if problem is not None:
            self._fail(model, problem)
            return
        self._served[key] += len(predictions)
        if self._served[key] >= self.policy.predictions_required and self.store.commit(model.name, model.version):
            detail = f"{self._served[key]} predictions within bounds"
            self.on_event(AgentEvent(EventKind.COMMIT, model.name, model.version, pointer.sequence, detail=detail))

    def run_failed(self, model: LoadedModel, problem: str) -> None:
        """``model`` raised instead of predicting: fails its probation, or is reported if already committed."""
        pointer = self.store.pointer(model.name)
        on_probation = pointer is not None and pointer.version == model.version and not pointer.committed
        if on_probation and (model.name, model.version) not in self._failed:
            self._fail(model, problem)
        else:
            self.on_event(AgentEvent(EventKind.HEALTH, model.name, model.version, detail=f"run failed: {problem}"))

    def _fail(self, model: LoadedModel, problem: str) -> None:
        reason = f"probation failed: {problem}"
        self._failed.add((model.name, model.version))
        if self.store.rollback(model.name, reason) is None:
            # nothing known good to go back to: keep serving, but say so
            self.on_event(
                AgentEvent(EventKind.HEALTH, model.name, model.version, detail=f"{reason}; no release to roll back to")
            )
