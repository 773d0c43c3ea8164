"""Signed audit checkpoints over a 100,000-entry log in a real SQLite file (target: a checkpoint under 10 s).

Signing verifies the whole chain and every earlier checkpoint first, so its cost grows with the log: this says
what an hourly checkpoint costs ``cloud serve`` at this size, and what ``admin audit verify`` costs.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from cloud.audit import GENESIS_HASH, entry_hash
from cloud.audit_checkpoints import AuditCheckpoints
from cloud.storage import open_database
from shared.signing import generate_private_key

ENTRIES = 100_000
CHECKPOINTS = 6  # six hours of hourly ones


def _fill(db, entries: int) -> None:
    """Entries as the log would hold them (hash-chained), written in one statement rather than 100,000 appends."""
    rows, prev = [], GENESIS_HASH
    for entry_id in range(1, entries + 1):
        at, details = "2026-01-01T00:00:00.000000Z", {"status": 200, "body_sha256": f"{entry_id:064x}"}
        digest = entry_hash(entry_id, at, "key:2e9d01debaa0", "http.post", "/api/x", details, prev)
        rows.append((entry_id, at, "key:2e9d01debaa0", "http.post", "/api/x", json.dumps(details), prev, digest))
        prev = digest
    with db.conn:
        db.conn.executemany("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?)", rows)


def run() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        db = open_database(Path(folder) / "iotsphere.db")
        _fill(db, ENTRIES)
        key, checkpoints = generate_private_key(), AuditCheckpoints(db)
        began = time.perf_counter()
        for _ in range(CHECKPOINTS):
            checkpoints.sign(key)
        sign_s = (time.perf_counter() - began) / CHECKPOINTS
        began = time.perf_counter()
        report = checkpoints.verify([key.public_key()])
        verify_s = time.perf_counter() - began
        db.conn.close()
    assert report.ok and report.checked == CHECKPOINTS
    return {
        "entries": ENTRIES,
        "checkpoints": CHECKPOINTS,
        "sign_checkpoint_s": round(sign_s, 2),
        "verify_with_checkpoints_s": round(verify_s, 2),
        "verify_us_per_entry": round(verify_s / ENTRIES * 1e6, 1),
        "target_sign_checkpoint_s": 10,
    }
