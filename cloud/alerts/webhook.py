"""Alerts to a webhook in Alertmanager's format (version 4), so the receiver that takes Prometheus' alerts through
Alertmanager takes the inbox's too.

Each alert is sent when it is raised (``firing``) and when it is resolved (``resolved``, with ``endsAt``); an
acknowledgement is sent as ``firing`` with ``acknowledged_by`` among the annotations. The rows are an outbox: what
the receiver did not take (an error status, a timeout, no connection) stays due and is sent again on the next pass,
its attempts counted. https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import sqlite_utils

from cloud.data import alerts as stored
from cloud.data.alerts import RESOLVED
from cloud.data.connections import connection_of, write_transaction

RECEIVER = "iotsphere"
#: Alertmanager's "not ended yet"
NOT_ENDED = "0001-01-01T00:00:00Z"
BATCH = 50


def _rfc3339(stored_time: str | None) -> str:
    return stored_time.replace(".000000Z", "Z") if stored_time else NOT_ENDED


def payload(row: Any, external_url: str) -> dict[str, Any]:
    """The webhook body Alertmanager would send for this one alert."""
    labels = json.loads(row["labels_json"])
    status = "resolved" if row["state"] == RESOLVED else "firing"
    annotations = {"summary": row["summary"], "subject": row["subject"], "inbox_state": row["state"]}
    if row["acknowledged_by"]:
        annotations["acknowledged_by"] = row["acknowledged_by"]
    alert = {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": _rfc3339(row["started_at"]),
        "endsAt": _rfc3339(row["resolved_at"]) if status == "resolved" else NOT_ENDED,
        "generatorURL": f"{external_url}/alerts/{row['id']}",
        "fingerprint": hashlib.sha256(row["fingerprint"].encode()).hexdigest()[:16],
    }
    group = {"alertname": labels["alertname"]}
    return {
        "version": "4",
        "groupKey": "{}:" + "{" + ",".join(f'{k}="{v}"' for k, v in group.items()) + "}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": RECEIVER,
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url,
        "alerts": [alert],
    }


def deliver(db: sqlite_utils.Database, url: str, external_url: str, client: httpx.Client) -> tuple[int, int]:
    """Send every alert whose state the receiver has not had; (sent, failed). Stops at the first failure: the
    receiver is down or refusing, and the rest wait for the next pass in order."""
    sent = 0
    due = stored.undelivered(connection_of(db), BATCH)
    for row in due:
        try:
            answer = client.post(url, json=payload(row, external_url))
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            with write_transaction(db) as connection:
                stored.delivery_failed(connection, [row["id"]], f"{type(exc).__name__}: {exc}")
            return sent, len(due) - sent
        with write_transaction(db) as connection:
            stored.delivered(connection, row["id"], row["state"])
        sent += 1
    return sent, 0
