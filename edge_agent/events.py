"""What the updater and the model store report, before the agent turns it into an ``up/events`` message."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from shared.messages import EventKind, GatewayEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentEvent:
    kind: EventKind
    model_name: str | None = None
    model_version: str | None = None
    director_sequence: int | None = None
    rule: str | None = None
    detail: str = ""
    #: SHA-256 of the director document the event is about (``shared.director.document_digest``): the cloud
    #: matches events to the documents it issued by this, since a forged copy can claim any sequence
    document_digest: str | None = None

    def to_message(self, gateway_id: str) -> GatewayEvent:
        return GatewayEvent(
            gateway_id=gateway_id,
            kind=self.kind,
            model_name=self.model_name,
            model_version=self.model_version,
            director_sequence=self.director_sequence,
            document_digest=self.document_digest,
            rule=self.rule,
            detail=self.detail[:4000],
        )

    def describe(self) -> str:
        model = f" {self.model_name}={self.model_version}" if self.model_name else ""
        sequence = f" sequence {self.director_sequence}" if self.director_sequence is not None else ""
        digest = f" document {self.document_digest[:12]}" if self.document_digest else ""
        rule = f" [{self.rule}]" if self.rule else ""
        return f"{self.kind.value}{model}{sequence}{digest}{rule} {self.detail}".rstrip()


EventSink = Callable[[AgentEvent], None]


def log_event(event: AgentEvent) -> None:
    """The default sink, and what every sink should also do: one log line per event."""
    level = logging.WARNING if event.kind in (EventKind.REJECT, EventKind.ROLLBACK) else logging.INFO
    log.log(level, "%s", event.describe())
