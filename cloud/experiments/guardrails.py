"""Guardrails: a challenger that is slower on the gateways, or that gateways refuse, loses whatever its metric says.

Figures per arm since the experiment started: edge inference latency, prediction counts, and events
gateways reported for the arm's version (``reject``: an install refused by one of the update rules;
``rollback``: a failed probation; ``health``: the version failed in service, e.g. a challenger that raised or
gave an output out of bounds, which the agent reports once per gateway while the champion serves on).
Thresholds are the experiment's ``guardrails`` (defaults below).

Latency is measured per run of a model on a gateway (a batch: every prediction of one run carries the same
``latency_ms``), so the p95 is taken over batches, one per gateway and ``made_at``, and the ratio is judged
only once both arms have ``min_latency_samples`` batches; a breach needs both the ratio and an absolute
``latency_slack_ms``. Counted per prediction, one slow batch of ten heaters
weighed ten times: in the demo a shadow challenger "breached" on its first three batches (one per gateway,
slowed by a busy CPU) out of 33.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlite_utils

from cloud.data import fleet
from cloud.data import predictions as stored_predictions
from cloud.data.connections import connection_of
from cloud.errors import Invalid
from cloud.experiments.metrics import CHALLENGER, CHALLENGERS, CHAMPION
from shared.messages import EventKind

DEFAULT_GUARDRAILS: dict[str, float] = {
    #: the challenger's p95 latency may be at most this multiple of the champion's
    "max_latency_p95_ratio": 1.5,
    #: ... and more than this many ms above it: between runs of tens of microseconds (a tree ensemble on a
    #: gateway's heaters) a ratio measures the CPU's scheduler, and a few ms more per run is nothing to a model run
    #: once per feature window
    "latency_slack_ms": 5.0,
    #: batches (model runs) per arm before the latency ratio is judged
    "min_latency_samples": 100,
    #: install rejections and probation rollbacks of the challenger tolerated across the fleet
    "max_rejections": 0,
    "max_rollbacks": 0,
    #: gateways reporting the challenger failed in service (health events)
    "max_failures": 0,
}


#: the events a guardrail counts
_EVENTS = (EventKind.REJECT.value, EventKind.ROLLBACK.value, EventKind.HEALTH.value)


def guardrails_with_defaults(given: dict[str, float] | None) -> dict[str, float]:
    unknown = set(given or {}) - set(DEFAULT_GUARDRAILS)
    if unknown:
        raise Invalid(f"unknown guardrails {sorted(unknown)}; known: {sorted(DEFAULT_GUARDRAILS)}")
    merged = {**DEFAULT_GUARDRAILS, **(given or {})}
    if any(value < 0 for value in merged.values()):
        raise Invalid("guardrail thresholds must not be negative")
    return merged


def arm_figures(db: sqlite_utils.Database, experiment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per arm: predictions, batches, latency p95 over batches in ms (None without any), rejections, rollbacks,
    failures in service."""
    since, until = experiment["started_at"], experiment["stopped_at"]
    arms = {
        CHAMPION: ([CHAMPION], experiment["champion_version"]),
        CHALLENGER: (CHALLENGERS, experiment["challenger_version"]),
    }
    figures: dict[str, dict[str, Any]] = {}
    connection = connection_of(db)
    for arm, (labels, version) in arms.items():
        batches = stored_predictions.batches(connection, experiment["model_name"], version, labels, since, until)
        latencies = np.array([latency for latency, _ in batches], dtype=np.float64)
        events = fleet.version_event_counts(connection, experiment["model_name"], version, _EVENTS, since, until)
        figures[arm] = {
            "predictions": sum(count for _, count in batches),
            "batches": int(latencies.size),
            "latency_p95_ms": float(np.percentile(latencies, 95)) if latencies.size else None,
            "rejections": int(events.get(EventKind.REJECT.value, 0)),
            "rollbacks": int(events.get(EventKind.ROLLBACK.value, 0)),
            "failures": int(events.get(EventKind.HEALTH.value, 0)),
        }
    return figures


def breaches(figures: dict[str, dict[str, Any]], guardrails: dict[str, float]) -> list[str]:
    """What the challenger broke, in words; empty when it is within every guardrail."""
    champion, challenger = figures[CHAMPION], figures[CHALLENGER]
    found = []
    if challenger["rejections"] > guardrails["max_rejections"]:
        found.append(f"gateways rejected the challenger {challenger['rejections']} time(s)")
    if challenger["rollbacks"] > guardrails["max_rollbacks"]:
        found.append(f"gateways rolled the challenger back {challenger['rollbacks']} time(s)")
    if challenger["failures"] > guardrails["max_failures"]:
        found.append(f"gateways reported the challenger failing in service {challenger['failures']} time(s)")
    enough = min(champion["batches"], challenger["batches"]) >= guardrails["min_latency_samples"]
    if enough and champion["latency_p95_ms"] and challenger["latency_p95_ms"]:
        ratio = challenger["latency_p95_ms"] / champion["latency_p95_ms"]
        slower_by = challenger["latency_p95_ms"] - champion["latency_p95_ms"]
        if ratio > guardrails["max_latency_p95_ratio"] and slower_by > guardrails["latency_slack_ms"]:
            found.append(
                f"challenger p95 latency {challenger['latency_p95_ms']:.2f} ms is {ratio:.2f}x the champion's, "
                f"{slower_by:.2f} ms slower (limit {guardrails['max_latency_p95_ratio']}x and "
                f"{guardrails['latency_slack_ms']:g} ms)"
            )
    return found
