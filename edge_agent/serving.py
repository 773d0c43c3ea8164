"""One feature tick's predictions: every model's active release, and its challenger in an experiment.

Each model is served on its own, so one that raises costs only its own predictions (and fails its
probation). A challenger runs after its champion and can never change the champion's output:

- shadow: the challenger runs on every heater the champion predicted for; its prediction goes up with
  the champion's ``prediction_id`` on the ``shadow`` arm, and only the champion's is acted on;
- split: ``shared.experiments.arm_for`` puts each heater on an arm from its device id and the experiment
  id alone, so the split holds offline and across restarts. Heaters on the challenger arm get the
  challenger's prediction instead of the champion's; where the challenger fails, they keep the
  champion's (a heater is never left without one).

A challenger's failure (it raises, or an output is missing, not finite or out of bounds) drops its
predictions, is counted per arm and reported once per challenger release as a ``health`` event.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from datetime import datetime

import numpy as np

from edge_agent.events import AgentEvent, EventSink, log_event
from edge_agent.inference import Heater, predict_with
from edge_agent.model_loader import LoadedModel
from edge_agent.model_store import Challenger
from edge_agent.probation import Probation, bounds_problem
from shared.experiments import arm_for
from shared.messages import Arm, EventKind, Prediction

log = logging.getLogger(__name__)


class Serving:
    """Runs the models and keeps, per model and arm, how many predictions went up and how many failed."""

    def __init__(self, probation: Probation, on_event: EventSink = log_event):
        self.probation = probation
        self.on_event = on_event
        self.sent: Counter[tuple[str, Arm]] = Counter()
        self.failed: Counter[tuple[str, Arm]] = Counter()
        self._reported: set[tuple[str, str]] = set()

    def counts(self, model_name: str) -> tuple[dict[str, int], dict[str, int]]:
        """Predictions sent and failed for ``model_name`` by arm."""

        def by_arm(counter: Counter[tuple[str, Arm]]) -> dict[str, int]:
            return {arm.value: n for (name, arm), n in sorted(counter.items()) if name == model_name}

        return by_arm(self.sent), by_arm(self.failed)

    def predict(
        self,
        champions: Mapping[str, LoadedModel],
        challengers: Mapping[str, Challenger],
        features: np.ndarray,
        heaters: list[Heater],
        window_end: datetime,
        made_at: datetime,
    ) -> list[Prediction]:
        """Every arm's predictions for these heaters (``features`` is ``(n_heaters, n_features)``)."""
        predictions: list[Prediction] = []
        for name, champion in champions.items():
            try:
                served = predict_with(champion, features, heaters, window_end, made_at)
            except Exception as exc:  # one model's failure must not cost the others their predictions
                log.exception("%s %s failed to run", name, champion.version)
                self.failed[name, Arm.CHAMPION] += len(heaters)
                self.probation.run_failed(champion, f"{type(exc).__name__}: {exc}")
                served = []
            self.probation.observe(champion, served)
            challenger = challengers.get(name)
            if challenger is not None:
                served = self._with_challenger(challenger, served, features, heaters, window_end, made_at)
            for prediction in served:
                self.sent[name, prediction.arm] += 1
            predictions.extend(served)
        return predictions

    def _with_challenger(
        self,
        challenger: Challenger,
        champion_served: list[Prediction],
        features: np.ndarray,
        heaters: list[Heater],
        window_end: datetime,
        made_at: datetime,
    ) -> list[Prediction]:
        """The champion's predictions with the challenger's added (shadow) or swapped in (split)."""
        experiment = challenger.experiment
        if experiment.mode == "shadow":
            arm = Arm.SHADOW
            ids = {p.device_id: p.prediction_id for p in champion_served}
            chosen = [i for i, heater in enumerate(heaters) if heater.device_id in ids]
        else:
            arm, ids = Arm.CHALLENGER, None
            chosen = [
                i
                for i, heater in enumerate(heaters)
                if arm_for(heater.device_id, experiment.experiment_id, experiment.challenger_percent) is Arm.CHALLENGER
            ]
        if not chosen:
            return champion_served
        good = self._run_challenger(
            challenger.model, features[chosen], [heaters[i] for i in chosen], window_end, made_at, arm, ids
        )
        if arm is Arm.SHADOW:
            return champion_served + good
        replaced = {p.device_id for p in good}
        return [p for p in champion_served if p.device_id not in replaced] + good

    def _run_challenger(
        self,
        model: LoadedModel,
        features: np.ndarray,
        heaters: list[Heater],
        window_end: datetime,
        made_at: datetime,
        arm: Arm,
        ids: dict[str, str] | None,
    ) -> list[Prediction]:
        """The challenger's predictions within bounds; the rest counted and reported, never raised."""
        try:
            served = predict_with(model, features, heaters, window_end, made_at, arm, ids)
        except Exception as exc:  # a challenger must never take the champion down with it
            self._challenger_failed(model, arm, len(heaters), f"{type(exc).__name__}: {exc}")
            return []
        good = []
        for prediction in served:
            problem = bounds_problem(model, prediction)
            if problem is None:
                good.append(prediction)
            else:
                self._challenger_failed(model, arm, 1, problem)
        return good

    def _challenger_failed(self, model: LoadedModel, arm: Arm, count: int, problem: str) -> None:
        self.failed[model.name, arm] += count
        key = (model.name, model.version)
        if key in self._reported:
            return
        self._reported.add(key)
        detail = f"challenger ({arm.value}) failed, champion unaffected: {problem}"
        self.on_event(AgentEvent(EventKind.HEALTH, model.name, model.version, detail=detail))
