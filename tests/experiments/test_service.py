"""ExperimentService on a real SQLite file and real signed director documents retained on the real Mosquitto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.errors import Invalid
from cloud.experiments.service import NotEnoughData
from cloud.experiments.store import ExperimentConflict
from cloud.ingest.decode import Accepted
from cloud.ingest.store import write_batch
from cloud.registry import RegistryRefused, UnknownModel
from shared.director import DirectorDocument, verify_director
from shared.messages import EventKind, FeedbackSource, Outcome, OutcomeBatch, OutcomeResult
from shared.topics import Up
from tests.experiments.conftest import COMPONENT, GATEWAYS, NAME, Lab
from tests.registry.test_http import retained_document, trusted_director_keys
from tests.rows import rows_of, update_rows

pytestmark = pytest.mark.mqtt

BIG_DIFFERENCE = {"champion": 0.40, "challenger": 0.10}


def _retained(lab: Lab, gateway_id: str, after: int | None) -> DirectorDocument:
    """The retained document a gateway would accept now (verified, and newer than ``after``)."""
    document = retained_document(lab.config, gateway_id)
    return verify_director(document.to_json(), trusted_director_keys(lab.config), gateway_id, after)


def _sequences(lab: Lab) -> dict[str, int]:
    return {g: retained_document(lab.config, g).signed.sequence for g in GATEWAYS}


def test_start_directs_gateways_to_the_challenger_with_the_experiment_and_stop_takes_it_off(lab: Lab):
    before = _sequences(lab)
    draft = lab.service.create(NAME, "2", actor="ops", mode="split", challenger_percent=30, reason="new anode data")
    assert (draft["status"], draft["champion_version"], draft["metric"]) == ("draft", "1", "error_rate")
    assert draft["planned_per_arm"] > 100

    started = lab.service.start(draft["experiment_id"], actor="ops")

    assert started.experiment["status"] == "running" and started.directed.pending is None
    assert sorted(d.signed.gateway_id for d in started.directed.documents) == sorted(GATEWAYS)
    for gateway_id in GATEWAYS:
        model = _retained(lab, gateway_id, before[gateway_id]).signed.models[NAME]
        assert (model.version, model.challenger.version) == ("1", "2")
        assert model.challenger.model_target == f"models/{NAME}/2/model.onnx"
        assert (model.experiment.experiment_id, model.experiment.mode, model.experiment.challenger_percent) == (
            draft["experiment_id"],
            "split",
            30,
        )
    running = _sequences(lab)

    stopped = lab.service.stop(draft["experiment_id"], actor="ops", reason="the edge team needs the gateways")

    assert stopped.experiment["status"] == "stopped"
    for gateway_id in GATEWAYS:
        model = _retained(lab, gateway_id, running[gateway_id]).signed.models[NAME]
        assert (model.version, model.challenger, model.experiment) == ("1", None, None)
    log = lab.service.store.decisions(draft["experiment_id"])
    assert [(d["action"], d["actor"]) for d in log] == [("create", "ops"), ("start", "ops"), ("stop", "ops")]
    assert log[2]["reason"] == "the edge team needs the gateways"


def test_a_winning_challenger_is_promoted_through_the_registry_with_the_experiment_as_reason(lab: Lab):
    experiment = lab.service.create(NAME, "2", actor="ops", mode="split", challenger_percent=50)
    lab.service.start(experiment["experiment_id"], actor="ops")
    running = _sequences(lab)
    lab.feed(experiment, devices=800, error_rate=BIG_DIFFERENCE)

    look = lab.service.status(experiment["experiment_id"])

    assert look["recommendation"] == "challenger_wins"
    arms = look["arms"]
    assert arms["champion"]["n"] + arms["challenger"]["n"] == 800
    assert arms["challenger"]["interval"][1] < arms["champion"]["interval"][0]  # 0.10 against 0.40
    assert look["sequential"]["significant"] and look["sequential"]["high"] < 0
    assert arms["challenger"]["latency_p95_ms"] is not None and look["guardrails"]["breaches"] == []

    concluded = lab.service.conclude(experiment["experiment_id"], actor="ops")

    assert (concluded.experiment["status"], concluded.experiment["decision"]) == ("concluded", "challenger")
    assert concluded.promotion["reason"] == f"won experiment {experiment['experiment_id']}"
    [entry, *_] = lab.registry.history(NAME)
    assert (entry["action"], entry["from_version"], entry["to_version"]) == ("promote", "1", "2")
    assert lab.registry.get_active_model(NAME)["model_version"] == "2"
    for gateway_id in GATEWAYS:
        model = _retained(lab, gateway_id, running[gateway_id]).signed.models[NAME]
        assert (model.version, model.challenger) == ("2", None)
    last = lab.service.store.decisions(experiment["experiment_id"])[-1]
    assert (last["action"], last["decision"], last["details"]["history_id"]) == ("conclude", "challenger", entry["id"])


def test_concluding_early_is_refused_unless_an_operator_forces_it_with_a_reason(lab: Lab):
    experiment = lab.service.create(NAME, "2", actor="ops", mode="shadow")
    lab.service.start(experiment["experiment_id"], actor="ops")
    running = _sequences(lab)
    lab.feed(experiment, devices=20, error_rate=BIG_DIFFERENCE)

    with pytest.raises(NotEnoughData, match="not enough data"):
        lab.service.conclude(experiment["experiment_id"], actor="ops")
    with pytest.raises(Invalid, match="concluding early needs a reason"):
        lab.service.conclude(experiment["experiment_id"], actor="ops", force=True)
    assert lab.service.store.get(experiment["experiment_id"])["status"] == "running"

    forced = lab.service.conclude(experiment["experiment_id"], actor="ops", force=True, reason="season is over")

    assert (forced.experiment["decision"], forced.experiment["reason"]) == ("inconclusive", "season is over")
    assert lab.registry.get_active_model(NAME)["model_version"] == "1"
    for gateway_id in GATEWAYS:
        model = _retained(lab, gateway_id, running[gateway_id]).signed.models[NAME]
        assert (model.version, model.challenger) == ("1", None)
    actions = [d["action"] for d in lab.service.store.decisions(experiment["experiment_id"])]
    assert actions == ["create", "start", "conclude_refused", "conclude"]


def test_a_challenger_failing_in_service_loses_on_its_guardrail(lab: Lab):
    experiment = lab.service.create(NAME, "2", actor="ops", mode="shadow")
    lab.service.start(experiment["experiment_id"], actor="ops")
    lab.feed(experiment, devices=400, error_rate=BIG_DIFFERENCE)  # better when it answers, but it fails on a gateway
    lab.report("1", EventKind.HEALTH)  # the champion's health is not the challenger's guardrail
    assert lab.service.status(experiment["experiment_id"])["guardrails"]["breaches"] == []

    lab.report("2", EventKind.HEALTH)

    look = lab.service.status(experiment["experiment_id"])
    assert look["arms"]["challenger"]["failures"] == 1 and look["arms"]["champion"]["failures"] == 1
    assert look["recommendation"] == "guardrail_breached"
    assert look["guardrails"]["breaches"] == ["gateways reported the challenger failing in service 1 time(s)"]


def test_a_challenger_gateways_reject_loses_on_its_guardrail(lab: Lab):
    experiment = lab.service.create(NAME, "2", actor="ops", challenger_percent=50)
    lab.service.start(experiment["experiment_id"], actor="ops")
    lab.feed(experiment, devices=400, error_rate=BIG_DIFFERENCE)  # better, but refused on a gateway
    lab.report("2", EventKind.REJECT)

    look = lab.service.status(experiment["experiment_id"])
    assert look["recommendation"] == "guardrail_breached"
    assert look["guardrails"]["breaches"] == ["gateways rejected the challenger 1 time(s)"]

    concluded = lab.service.conclude(experiment["experiment_id"], actor="ops")

    assert concluded.experiment["decision"] == "champion" and concluded.promotion is None
    assert lab.registry.get_active_model(NAME)["model_version"] == "1"


def test_the_registry_gate_still_applies_to_a_winner(lab: Lab):
    lab.registry.record_evaluation(NAME, "2", passed=False, details={"mean_pr_auc": 0.1})
    experiment = lab.service.create(NAME, "2", actor="ops", challenger_percent=50)
    lab.service.start(experiment["experiment_id"], actor="ops")
    lab.feed(experiment, devices=800, error_rate=BIG_DIFFERENCE)

    with pytest.raises(RegistryRefused, match="failed evaluation"):
        lab.service.conclude(experiment["experiment_id"], actor="ops")

    assert lab.service.store.get(experiment["experiment_id"])["status"] == "running"
    refused = lab.service.store.decisions(experiment["experiment_id"])[-1]
    assert (refused["action"], refused["decision"]) == ("conclude_refused", "challenger")
    assert "failed evaluation" in refused["reason"]


def test_create_refuses_what_cannot_be_an_experiment(lab: Lab):
    with pytest.raises(Invalid, match="different version"):
        lab.service.create(NAME, "1", actor="ops")
    with pytest.raises(ExperimentConflict, match="not in production"):
        lab.service.create(NAME, "1", champion_version="2", actor="ops")
    with pytest.raises(UnknownModel):
        lab.service.create(NAME, "9", actor="ops")
    with pytest.raises(Invalid, match="between 1 and 99"):
        lab.service.create(NAME, "2", actor="ops", mode="split", challenger_percent=100)
    with pytest.raises(Invalid, match="effect must be positive"):
        lab.service.create(NAME, "2", actor="ops", min_detectable_effect=0.0, planned=100)
    with pytest.raises(Invalid, match="unknown guardrails"):
        lab.service.create(NAME, "2", actor="ops", guardrails={"max_cpu": 1})
    update_rows(lab.db, "models", {"model_name": NAME, "model_version": "2"}, {"release_target": None})
    with pytest.raises(ExperimentConflict, match="not released"):
        lab.service.create(NAME, "2", actor="ops")
    assert lab.service.store.list() == []


def test_one_running_experiment_per_model(lab: Lab):
    first = lab.service.create(NAME, "2", actor="ops")
    second = lab.service.create(NAME, "2", actor="ops", mode="shadow")
    lab.service.start(first["experiment_id"], actor="ops")

    with pytest.raises(ExperimentConflict, match="already running"):
        lab.service.start(second["experiment_id"], actor="ops")
    with pytest.raises(ExperimentConflict, match="start needs it draft"):
        lab.service.start(first["experiment_id"], actor="ops")
    assert lab.service.store.get(second["experiment_id"])["status"] == "draft"


def test_shadow_mode_scores_both_arms_on_the_same_predictions_and_counts_each_once(lab: Lab):
    experiment = lab.service.create(NAME, "2", actor="ops", mode="shadow")
    lab.service.start(experiment["experiment_id"], actor="ops")
    lab.feed(experiment, devices=300, error_rate=BIG_DIFFERENCE)
    first = rows_of(lab.db, "predictions")[0]
    prediction_id, device_id = first["prediction_id"], first["device_id"]
    second_visit = Outcome(
        device_id=device_id,
        source=FeedbackSource.TECHNICIAN,
        observed_at=datetime.now(UTC) + timedelta(days=2),
        prediction_id=prediction_id,
        component=COMPONENT,
        result=OutcomeResult.REPLACED,
    )
    write_batch(
        lab.db,
        [Accepted(Up.OUTCOMES, OutcomeBatch(gateway_id=GATEWAYS[0], outcomes=[second_visit]))],
        [],
        datetime.now(UTC),
    )

    arms = lab.service.status(experiment["experiment_id"])["arms"]

    assert (arms["champion"]["n"], arms["challenger"]["n"]) == (300, 300)
    assert (arms["champion"]["predictions"], arms["challenger"]["predictions"]) == (300, 300)
    assert arms["challenger"]["mean"] < 0.2 < 0.3 < arms["champion"]["mean"]
