"""An outcome a gateway sends over MQTT, through the real Mosquitto and IngestWorker, lands with its notes encrypted."""

from __future__ import annotations

import dataclasses

import pytest

from cloud.config import CloudConfig
from cloud.feedback import PredictionFeedbackService
from cloud.ingest import IngestWorker
from cloud.storage import open_database
from shared.topics import Up
from tests.ingest.helpers import BROKER_URL, Publisher, forget_session, outcomes, predictions, unique, wait_for
from tests.postgres_run import sqlite_files
from tests.rows import rows_of

pytestmark = pytest.mark.mqtt


def test_mqtt_outcome_notes_are_stored_encrypted_and_read_back(config: CloudConfig) -> None:
    config = dataclasses.replace(config, mqtt_url=BROKER_URL, topic_prefix=f"{unique('test')}/iotsphere/v1")
    db = open_database(config.database_url)
    worker = IngestWorker(config, client_id=unique("feedback-ingest"))
    publisher = Publisher(config.topic_prefix)
    try:
        worker.start()
        publisher.send(predictions(), Up.PREDICTIONS)
        publisher.send(outcomes(), Up.OUTCOMES)  # technician notes "element replaced" on pred-0001
        wait_for(lambda: worker.stats.stored == 2, what="the prediction and the outcome stored")
    finally:
        publisher.close()
        worker.stop()
        forget_session(worker.client_id)

    raw = rows_of(db, "outcomes", outcome_id="outcome-0001")[0]["notes"]
    assert raw.startswith("fernet:") and "element replaced" not in raw
    db_files = sqlite_files(config)
    assert not any(b"element replaced" in path.read_bytes() for path in db_files)
    [outcome] = PredictionFeedbackService(db).outcomes("pred-0001", decrypt=True)
    assert (outcome.notes, outcome.source, outcome.device_id) == ("element replaced", "technician", "h1")
    db.close()
