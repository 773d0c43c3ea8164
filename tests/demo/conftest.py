"""Fixtures of the demo tests."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def isolated(monkeypatch):
    """A topic prefix and ingest session of this test alone, so runs on one broker never meet."""
    tag = uuid.uuid4().hex[:8]
    monkeypatch.setenv("IOTSPHERE_TOPIC_PREFIX", f"test-{tag}/iotsphere/v1")
    monkeypatch.setenv("IOTSPHERE_INGEST_CLIENT_ID", f"test-demo-ingest-{tag}")
    return tag
