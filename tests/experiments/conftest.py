"""A cloud ready for an A/B test: versions 1 and 2 signed into a real TUF repository (the registry tests' fixture),
version 1 in production on two gateways through real signed director documents, and predictions and outcomes
fed through ingest's own write path."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlite_utils

from cloud.config import CloudConfig
from cloud.experiments.service import ExperimentService
from cloud.ingest.decode import Accepted
from cloud.ingest.store import write_batch
from cloud.registry import MLModelRegistry
from cloud.releases.service import ReleaseService
from cloud.storage import iso, open_database
from shared.experiments import arm_for
from shared.messages import (
    Arm,
    EventKind,
    FeedbackSource,
    GatewayEvent,
    Outcome,
    OutcomeBatch,
    OutcomeResult,
    Prediction,
    PredictionBatch,
    PredictionType,
)
from shared.topics import Up
from tests.registry.test_http import GATEWAY, NAME, released  # noqa: F401 (fixture)
from tests.releases.conftest import PASSPHRASE, clear_retained, onnx_models  # noqa: F401 (fixture)
from tests.rows import insert_row

GATEWAYS = [GATEWAY, "gw-exp-2"]
DEVICE_TYPE = "tank-50gal-electric"
COMPONENT = "heating_element"


@pytest.fixture
def production(released: CloudConfig) -> Iterator[CloudConfig]:  # noqa: F811
    """The registry tests' released versions 1 and 2 with a second gateway, and version 1 in production."""
    db = open_database(released.database_url)
    try:
        insert_row(db, "gateways", {"gateway_id": GATEWAYS[1], "last_seen": iso(datetime.now(UTC))})
        MLModelRegistry(db).promote_model_to_production(
            NAME, "1", actor="tests", reason="first model", rollout=ReleaseService(released, PASSPHRASE)
        )
    finally:
        db.close()
    yield released
    clear_retained(released, GATEWAYS[1:])


@dataclass
class Lab:
    config: CloudConfig
    db: sqlite_utils.Database
    service: ExperimentService
    registry: MLModelRegistry

    def feed(self, experiment: dict, devices: int, error_rate: dict[str, float], seed: int = 0) -> None:
        """A prediction per heater and arm, and a technician's outcome for each heater, stored by ingest.

        Split: each heater on its ``arm_for`` arm. Shadow: the champion's row and the challenger's ``shadow`` row
        under one ``prediction_id``, as the edge sends them. A prediction is wrong with its arm's ``error_rate``:
        it names the heating element while the technician finds it fine, or names nothing while it had failed.
        """
        rng = np.random.default_rng(seed)
        now = datetime.now(UTC)
        predictions, outcomes = [], []
        for index in range(devices):
            device_id = f"wh-{seed}-{index:05d}"
            if experiment["mode"] == "split":
                arms = [arm_for(device_id, experiment["experiment_id"], experiment["challenger_percent"])]
            else:
                arms = [Arm.CHAMPION, Arm.SHADOW]
            failed = bool(rng.random() < 0.5)
            prediction_id = uuid.uuid4().hex
            for arm in arms:
                on_champion = arm == Arm.CHAMPION
                wrong = bool(rng.random() < error_rate["champion" if on_champion else "challenger"])
                names_element = failed != wrong
                predictions.append(
                    Prediction(
                        prediction_id=prediction_id,
                        device_id=device_id,
                        device_type=DEVICE_TYPE,
                        prediction_type=PredictionType.COMPONENT_FAILURE,
                        model_name=NAME,
                        model_version=experiment["champion_version" if on_champion else "challenger_version"],
                        arm=arm,
                        outputs={"none": 0.3, COMPONENT: 0.7} if names_element else {"none": 0.7, COMPONENT: 0.3},
                        latency_ms=float(rng.uniform(1, 3)),
                        made_at=now + timedelta(seconds=1),
                    )
                )
            outcomes.append(
                Outcome(
                    device_id=device_id,
                    source=FeedbackSource.TECHNICIAN,
                    observed_at=now + timedelta(days=1),
                    prediction_id=prediction_id,
                    component=COMPONENT,
                    result=OutcomeResult.FAILED if failed else OutcomeResult.OK,
                )
            )
        for start in range(0, max(len(predictions), len(outcomes)), 500):
            batch = [
                Accepted(Up.PREDICTIONS, PredictionBatch(gateway_id=GATEWAYS[0], predictions=chunk))
                for chunk in [predictions[start : start + 500]]
                if chunk
            ] + [
                Accepted(Up.OUTCOMES, OutcomeBatch(gateway_id=GATEWAYS[0], outcomes=chunk))
                for chunk in [outcomes[start : start + 500]]
                if chunk
            ]
            write_batch(self.db, batch, [], now)

    def report(self, version: str, kind: EventKind, count: int = 1) -> None:
        """Gateways' update events for a version, as ingest stores them."""
        at = datetime.now(UTC) + timedelta(seconds=1)
        events = [
            Accepted(
                Up.EVENTS,
                GatewayEvent(gateway_id=GATEWAYS[0], kind=kind, model_name=NAME, model_version=version, sent_at=at),
            )
            for _ in range(count)
        ]
        write_batch(self.db, events, [], at)


@pytest.fixture
def lab(production: CloudConfig) -> Iterator[Lab]:
    db = open_database(production.database_url)
    registry = MLModelRegistry(db)
    rollout = ReleaseService(production, PASSPHRASE)
    yield Lab(production, db, ExperimentService(db, production, registry, rollout), registry)
    db.close()
