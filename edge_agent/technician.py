"""Outcomes logged on site by a technician: checked, linked to the prediction they judge, and queued.

The same path serves ``iotsphere edge outcome`` (its own process, the agent running or not) and the
agent's local HTTP endpoint. The outcome is committed to the gateway's outbox, never dropped, and goes
up on ``up/outcomes`` whenever the gateway is next online. Without an explicit ``prediction_id`` it
links to the newest ``component_failure`` prediction the agent made for the heater within the
horizon, which is what the technician came to confirm or deny.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_agent.device_index import DEVICES_FILE, DeviceIndex, GatewayIdentity, SiteOutcome
from edge_agent.outbox import OUTBOX_FILE, Outbox
from shared.messages import Component, FeedbackSource, Identifier, Outcome, OutcomeBatch, OutcomeResult, utc_now
from shared.topics import Up, up_topic


class OutcomeRequest(BaseModel):
    """What a technician reports: the body of ``POST /outcomes`` and the options of ``edge outcome``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: Identifier
    component: Component
    result: OutcomeResult
    notes: str | None = Field(None, max_length=4000)
    technician: str | None = Field(None, max_length=128)
    prediction_id: str | None = Field(None, min_length=8, max_length=64)
    #: made by the page (or app) before the submit: the same id twice stores one outcome
    outcome_id: str | None = Field(None, min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class UnknownDevice(LookupError):
    """The gateway has never heard from this heater: most likely a typo in its id."""


class OutcomeRefused(ValueError):
    """The outcome contradicts what the gateway knows (a prediction of another heater, no agent yet)."""


class TechnicianLog:
    def __init__(
        self,
        outbox: Outbox,
        devices: DeviceIndex,
        on_append: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ):
        """``clock`` stamps ``observed_at``: the wall clock on site, the simulated one for simulated technicians
        (whose heaters and predictions live in accelerated time)."""
        self.outbox = outbox
        self.devices = devices
        self.on_append = on_append
        self.clock = clock
        #: one outcome id is checked and queued at a time, so a double submit's second request finds the first
        self._recording = threading.Lock()

    def record(self, request: OutcomeRequest) -> Outcome:
        """Check, link and durably queue one outcome; raise ``UnknownDevice`` or ``OutcomeRefused``.

        An ``outcome_id`` already logged here queues nothing and returns the first outcome (its notes stay sealed
        in the outbox). Queued before it is logged: a crash between the two can only send it twice, and the cloud
        keeps one outcome per id.
        """
        with self._recording:
            if request.outcome_id is not None and (logged := self.devices.site_outcome(request.outcome_id)):
                if logged.device_id != request.device:
                    raise OutcomeRefused(f"outcome {request.outcome_id} was logged for {logged.device_id!r}")
                return _as_outcome(logged)
            return self._queue(request)

    def _queue(self, request: OutcomeRequest) -> Outcome:
        identity = self._identity()
        if not self.devices.is_known(request.device):
            raise UnknownDevice(
                f"device {request.device!r} is unknown to gateway {identity.gateway_id}: its agent has never "
                "received telemetry from it (check the id on the heater's label)"
            )
        observed_at = self.clock()
        prediction_id = request.prediction_id
        if prediction_id is None:
            prediction_id = self.devices.latest_prediction(request.device, observed_at - identity.horizon)
        else:
            owner = self.devices.device_of(prediction_id)
            if owner is not None and owner != request.device:
                raise OutcomeRefused(f"prediction {prediction_id} was made for {owner!r}, not {request.device!r}")
        outcome = Outcome(
            **({"outcome_id": request.outcome_id} if request.outcome_id else {}),
            device_id=request.device,
            source=FeedbackSource.TECHNICIAN,
            observed_at=observed_at,
            prediction_id=prediction_id,
            component=request.component,
            result=request.result,
            technician=request.technician,
            notes=request.notes,
        )
        batch = OutcomeBatch(gateway_id=identity.gateway_id, outcomes=[outcome])
        topic = up_topic(identity.gateway_id, Up.OUTCOMES, identity.prefix)
        self.outbox.append(topic, batch.to_json(), batch.msg_id, Up.OUTCOMES.value)
        self.devices.log_outcome(
            SiteOutcome(
                outcome.outcome_id,
                outcome.device_id,
                request.component.value,
                request.result.value,
                prediction_id,
                request.technician,
                observed_at,
                batch.msg_id,
            )
        )
        if self.on_append is not None:
            self.on_append()
        return outcome

    def close(self) -> None:
        self.outbox.close()
        self.devices.close()

    def _identity(self) -> GatewayIdentity:
        identity = self.devices.identity()
        if identity is None:
            raise OutcomeRefused(f"no edge agent has run with the data dir of {self.devices.path}: start it once first")
        return identity


def _as_outcome(logged: SiteOutcome) -> Outcome:
    return Outcome(
        outcome_id=logged.outcome_id,
        device_id=logged.device_id,
        source=FeedbackSource.TECHNICIAN,
        observed_at=logged.observed_at,
        prediction_id=logged.prediction_id,
        component=logged.component,
        result=logged.result,
        technician=logged.technician,
    )


def open_log(data_dir: Path, clock: Callable[[], datetime] = utc_now) -> TechnicianLog:
    """The log of an agent's data dir from outside its process (the agent may be running: SQLite arbitrates)."""
    if not (data_dir / DEVICES_FILE).exists():
        raise OutcomeRefused(f"no edge agent has run with the data dir {data_dir}: start it once first")
    return TechnicianLog(Outbox(data_dir / OUTBOX_FILE), DeviceIndex(data_dir / DEVICES_FILE), clock=clock)


def validation_detail(exc: ValidationError) -> str:
    """What was wrong with a technician's request, field by field, for a person to read (local API and page)."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
