"""The periodic job of ``cloud serve`` that keeps the alert inbox current and its webhook fed."""

from __future__ import annotations

import logging

import httpx
import sqlite_utils

from cloud.alerts.inbox import AlertInbox
from cloud.alerts.webhook import deliver
from cloud.config import CloudConfig, environment
from cloud.workers import PeriodicWorker

log = logging.getLogger(__name__)


class AlertWorker(PeriodicWorker):
    name = "alerts"
    leader_lock = "alerts"

    def __init__(
        self, config: CloudConfig, external_url: str = "http://127.0.0.1:8080", interval: float | None = None
    ) -> None:
        settings = environment()
        super().__init__(config, interval or settings.alert_scan_interval_s)
        self.webhook_url = settings.alert_webhook_url
        self.external_url = external_url
        self._client = httpx.Client(timeout=10)

    def step(self, db: sqlite_utils.Database) -> bool:
        result = AlertInbox(db).scan()
        if result.raised or result.cleared:
            log.info("alerts: %d raised, %d cleared", len(result.raised), len(result.cleared))
        if self.webhook_url:
            sent, failed = deliver(db, self.webhook_url, self.external_url, self._client)
            if failed:
                log.warning("alerts: the webhook took %d, %d wait for the next pass", sent, failed)
        return False

    def stop(self, timeout: float = 30.0) -> None:
        super().stop(timeout)
        self._client.close()
