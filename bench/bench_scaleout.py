"""Ingest workers scaling out on the broker's shared subscription, storing into PostgreSQL (issue 13 §3).

The traffic and the method are ``bench_load``'s drain: a private Mosquitto on a free port (``max_queued_messages
0``), the workers' persistent sessions made first in one shared group, then the generator (the ``iotsphere sim
load`` command) publishes DRAIN_SECONDS of the real-time traffic of DRAIN_GATEWAYS gateways while the workers are
away, and 1, then 2, worker processes (IngestWorker, each a child of ``bench_load``) start and drain it. Each step
gets a fresh PostgreSQL schema on the machine's server (``IOTSPHERE_DATABASE_URL``, which the workers inherit),
dropped afterwards. Everything is on this machine's loopback and its 2 cores.

Reported per step: messages and rows stored per second, CPU seconds per 1,000 messages of the workers, of the
PostgreSQL server's processes (all of them: the machine's other clients included) and of Mosquitto, and how the
messages split between the workers — the figures that say whether a second worker adds throughput and, if not,
what the cores were busy with.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import Engine, text

from bench.bench_load import (
    DRAIN_GATEWAYS,
    DRAIN_SECONDS,
    _config,
    _cpu_seconds,
    _generator,
    _Progress,
    _start_workers,
    _stop_workers,
    _subscribe,
)
from cloud.data import engine as engines
from cloud.data.postgres import dispose_engines
from cloud.storage import open_database
from tests.postgres_run import SERVER, field_key, schema_url
from tests.private_broker import PrivateBroker

WORKERS = (1, 2)


def _postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL server process so far (the server's, whoever its clients are)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text_ = stat.read_text()
        except OSError:  # exited meanwhile
            continue
        if "(postgres)" in text_:
            total += _cpu_seconds(int(stat.parent.name))
    return total


def _count(admin: Engine, schema: str, table: str) -> int:
    with admin.connect() as connection:
        return connection.execute(text(f"SELECT count(*) FROM {schema}.{table}")).scalar()


def _drain(broker: PrivateBroker, folder: Path, admin: Engine, workers: int) -> dict:
    schema, prefix = f"bench_scaleout_{uuid.uuid4().hex[:8]}", f"scaleout{workers}"
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    os.environ["IOTSPHERE_DATABASE_URL"] = schema_url(schema)  # this process's and the workers'
    try:
        open_database(os.environ["IOTSPHERE_DATABASE_URL"]).close()  # migrated before the workers start
        names = [f"{prefix}-w{i}" for i in range(workers)]
        _subscribe(_config(broker.port, folder / prefix, prefix), names)
        generator = _generator(broker.port, prefix, DRAIN_GATEWAYS, "1000x", DRAIN_SECONDS / 1000)
        sent = _Progress(generator, lambda: 0).finished()
        started = time.monotonic()
        postgres_before, broker_before = _postgres_cpu(), _cpu_seconds(broker.process.pid)
        processes = _start_workers(broker.port, folder / prefix, prefix, names)
        cpu_before = {p.pid: _cpu_seconds(p.pid) for p in processes}
        while (stored := _count(admin, schema, "ingested_messages")) < sent["sent"]:
            if time.monotonic() - started > 600:
                raise RuntimeError(f"drain stalled at {stored} of {sent['sent']:.0f}")
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        worker_cpu = [_cpu_seconds(p.pid) - cpu_before[p.pid] for p in processes]
        postgres_cpu, broker_cpu = _postgres_cpu() - postgres_before, _cpu_seconds(broker.process.pid) - broker_before
        _stop_workers(processes)
        dead = _count(admin, schema, "dead_letters")
    finally:
        dispose_engines()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    per_1000 = 1000 / sent["sent"]
    return {
        "workers": workers,
        "messages": int(sent["sent"]),
        "rows": int(sent["rows"]),
        "seconds": round(elapsed, 2),
        "msgs_per_s": round(sent["sent"] / elapsed),
        "rows_per_s": round(sent["rows"] / elapsed),
        "worker_cpu_s_per_1000_msgs": round(sum(worker_cpu) * per_1000, 3),
        "worker_cores_busy": round(sum(worker_cpu) / elapsed, 2),
        "worker_cpu_share": [round(cpu / sum(worker_cpu), 2) for cpu in worker_cpu],
        "postgres_cpu_s_per_1000_msgs": round(postgres_cpu * per_1000, 3),
        "postgres_cores_busy": round(postgres_cpu / elapsed, 2),
        "mosquitto_cores_busy": round(broker_cpu / elapsed, 2),
        "dead_letters": dead,
    }


def run() -> dict:
    os.environ.setdefault("IOTSPHERE_FIELD_KEY", field_key())
    before = os.environ.get("IOTSPHERE_DATABASE_URL")
    admin = engines.create(SERVER)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp:
            folder = Path(tmp)
            broker = PrivateBroker(folder, "allow_anonymous true\nmax_queued_messages 0\n", persistence=False)
            broker.start()
            try:
                steps = [_drain(broker, folder, admin, workers) for workers in WORKERS]
            finally:
                broker.stop()
    finally:
        admin.dispose()
        if before is None:
            os.environ.pop("IOTSPHERE_DATABASE_URL", None)
        else:
            os.environ["IOTSPHERE_DATABASE_URL"] = before
    one, two = steps
    return {
        "database": "postgresql (loopback, one server)",
        "drain_gateways": DRAIN_GATEWAYS,
        "drain_traffic_seconds": DRAIN_SECONDS,
        "drain": steps,
        "two_over_one": round(two["msgs_per_s"] / one["msgs_per_s"], 2),
        "cpus": os.cpu_count(),
    }
