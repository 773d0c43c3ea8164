"""Serving with challengers, on real ONNX models: shadow and split arms, and challengers that fail.

The champion imputes gaps; the NaN-prone challenger does not, so a row with a gap gives it NaN outputs
(its golden vectors, all finite, pass); the raising challenger was trained on fewer features than the
rows have, so onnxruntime refuses to run it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from edge_agent.inference import Heater, predict
from edge_agent.model_loader import LoadedModel, load_model
from edge_agent.model_store import Challenger, ModelStore
from edge_agent.probation import Probation
from edge_agent.serving import Serving
from shared.director import Experiment
from shared.experiments import arm_for
from shared.messages import Arm, EventKind
from tests.edge.releases import FEATURE_NAMES, BuiltRelease, build_release

MODEL = "component_failure"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
HEATERS = [Heater(f"wh-{i:03d}", "nwp500-50") for i in range(40)]
ROWS = np.random.default_rng(3).normal(size=(len(HEATERS), len(FEATURE_NAMES))).astype(np.float32)
ROWS[::4, 1] = np.nan  # a gap in every fourth heater's window
SHADOW = Experiment(experiment_id="exp-shadow", mode="shadow")
SPLIT = Experiment(experiment_id="exp-split", mode="split", challenger_percent=40)


def _load(built: BuiltRelease) -> LoadedModel:
    return load_model(built.onnx_bytes, built.release)


@pytest.fixture
def champion(tmp_path: Path) -> tuple[ModelStore, LoadedModel]:
    """Version 1 active and committed."""
    built = build_release("1", seed=0)
    store = ModelStore(tmp_path / "models")
    store.install(built.release, built.release_bytes, built.onnx_bytes)
    loaded = _load(built)
    store.activate(loaded)
    store.commit(MODEL, "1")
    return store, loaded


def _serving(store: ModelStore, events: list) -> Serving:
    return Serving(Probation(store, on_event=events.append), on_event=events.append)


def _alone(model: LoadedModel) -> dict[str, dict[str, float]]:
    """The champion's outputs by device when it runs with no challenger."""
    return {p.device_id: p.outputs for p in predict({MODEL: model}, ROWS, HEATERS, NOW, NOW)}


def test_shadow_sends_both_under_one_prediction_id_and_counts_each_arm(champion):
    store, model = champion
    serving = _serving(store, [])
    challenger = Challenger(_load(build_release("2", seed=1)), SHADOW)

    predictions = serving.predict({MODEL: model}, {MODEL: challenger}, ROWS, HEATERS, NOW, NOW)

    by_arm = {arm: {p.device_id: p for p in predictions if p.arm is arm} for arm in Arm}
    assert set(by_arm[Arm.CHAMPION]) == set(by_arm[Arm.SHADOW]) == {h.device_id for h in HEATERS}
    assert not by_arm[Arm.CHALLENGER]
    for device_id, first in by_arm[Arm.CHAMPION].items():
        shadow = by_arm[Arm.SHADOW][device_id]
        assert shadow.prediction_id == first.prediction_id
        assert (first.model_version, shadow.model_version) == ("1", "2")
    assert {d: p.outputs for d, p in by_arm[Arm.CHAMPION].items()} == _alone(model)
    assert len({p.prediction_id for p in by_arm[Arm.CHAMPION].values()}) == len(HEATERS)
    assert serving.counts(MODEL) == ({"champion": len(HEATERS), "shadow": len(HEATERS)}, {})


def test_split_puts_each_heater_on_the_arm_its_device_id_hashes_to(champion):
    store, model = champion
    serving = _serving(store, [])
    challenger = Challenger(_load(build_release("2", seed=1)), SPLIT)

    predictions = serving.predict({MODEL: model}, {MODEL: challenger}, ROWS, HEATERS, NOW, NOW)

    assert sorted(p.device_id for p in predictions) == [h.device_id for h in HEATERS]  # one each
    expected = {h.device_id: arm_for(h.device_id, SPLIT.experiment_id, SPLIT.challenger_percent) for h in HEATERS}
    assert {p.device_id: p.arm for p in predictions} == expected
    assert {p.arm: p.model_version for p in predictions} == {Arm.CHAMPION: "1", Arm.CHALLENGER: "2"}
    on_challenger = sum(arm is Arm.CHALLENGER for arm in expected.values())
    assert 0 < on_challenger < len(HEATERS)
    sent, failed = serving.counts(MODEL)
    assert sent == {"champion": len(HEATERS) - on_challenger, "challenger": on_challenger} and failed == {}


@pytest.mark.parametrize("experiment", [SHADOW, SPLIT], ids=["shadow", "split"])
@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda: build_release("2", seed=1, impute=False), id="nan-outputs"),
        pytest.param(lambda: build_release("3", seed=1, feature_names=tuple(FEATURE_NAMES[:3])), id="raises"),
    ],
)
def test_a_failing_challenger_never_changes_the_champions_predictions(champion, experiment, broken):
    store, model = champion
    events: list = []
    serving = _serving(store, events)
    challenger = Challenger(_load(broken()), experiment)
    alone = _alone(model)

    for _ in range(2):
        predictions = serving.predict({MODEL: model}, {MODEL: challenger}, ROWS, HEATERS, NOW, NOW)
        champions = {p.device_id: p.outputs for p in predictions if p.arm is Arm.CHAMPION}
        challenged = [p for p in predictions if p.arm is not Arm.CHAMPION]
        assert all(np.isfinite(list(p.outputs.values())).all() for p in predictions)
        if experiment.mode == "shadow":
            assert champions == alone
        else:  # a heater whose challenger failed keeps the champion's prediction
            assert {**champions, **{p.device_id: alone[p.device_id] for p in challenged}} == alone
            assert not set(champions) & {p.device_id for p in challenged}

    sent, failed = serving.counts(MODEL)
    arm = "shadow" if experiment.mode == "shadow" else "challenger"
    assert set(failed) == {arm} and failed[arm] > 0
    assert sent.get(arm, 0) + failed[arm] == 2 * (
        len(HEATERS)
        if experiment.mode == "shadow"
        else sum(arm_for(h.device_id, SPLIT.experiment_id, 40) is Arm.CHALLENGER for h in HEATERS)
    )
    # reported once per challenger release, and the champion stays committed
    assert [(e.kind, e.model_version) for e in events] == [(EventKind.HEALTH, challenger.model.version)]
    assert "champion unaffected" in events[0].detail
    assert store.pointer(MODEL).committed and store.pointer(MODEL).version == "1"


def test_a_champion_that_raises_costs_only_its_own_predictions(champion, tmp_path: Path):
    store, model = champion
    events: list = []
    serving = _serving(store, events)
    other = build_release("1", model_name="anomaly_test", seed=2, feature_names=tuple(FEATURE_NAMES[:3]))
    raising = _load(other)

    predictions = serving.predict({"anomaly_test": raising, MODEL: model}, {}, ROWS, HEATERS, NOW, NOW)

    assert {p.device_id: p.outputs for p in predictions} == _alone(model)
    assert serving.counts("anomaly_test") == ({}, {"champion": len(HEATERS)})
    assert [(e.kind, e.model_name) for e in events] == [(EventKind.HEALTH, "anomaly_test")]
