"""MQTT ingest: gateway uplink messages → SQLite, batched, idempotent, acknowledged only once stored."""

from cloud.ingest.worker import IngestStats, IngestWorker

__all__ = ["IngestStats", "IngestWorker"]
