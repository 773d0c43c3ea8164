"""How many gateways one ingest worker carries: ``iotsphere sim load`` traffic → Mosquitto → IngestWorker → SQLite.

The traffic is what edge agents send (``firmware_sim.load``): per gateway of 20 heaters, a status a minute, one
feature batch (20 rows) and one prediction batch (60 rows) an hour, an event every 14 hours. Status messages are
97% of the messages; feature and prediction rows are most of the rows.

Method. A private Mosquitto on a free port (``max_queued_messages 0``: a lagging session queues instead of dropping,
so lag shows as a growing backlog). Every process is separate: the generator (the ``iotsphere sim load`` command),
each ingest worker (an IngestWorker in a child of this module), Mosquitto; each run gets a fresh SQLite data dir and
topic prefix.

- ``live``: the generator publishes N gateways in real time (``--rate 1``) for STEP_SECONDS while one worker
  stores; N grows along LADDER (stopping at the first N it cannot carry, which is then run again with 2 workers).
  Backlog = messages sent (the generator's progress, every second) − messages stored; a worker keeps up when the
  generator was on time and the backlog did not grow (its slope over the run is under 2% of the offered rate).
  All processes share this machine's two cores, so CPU seconds per 1,000 messages are reported per process.
- ``drain``: the generator first publishes a backlog while the workers are away (their persistent sessions queue
  it); then 1, or 2 in one shared group, worker processes start and the clock runs until all is stored. That is the
  workers' own ceiling on this traffic, without the generator competing for the CPU.
- ``storage``: bytes per row of each table in the SQLite file the 1-worker drain wrote (``dbstat``), for
  docs/scaling.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cloud.config import CloudConfig
from cloud.ingest import IngestWorker
from cloud.storage import open_database
from firmware_sim.load import LoadProfile
from tests.private_broker import PrivateBroker

PROJECT = Path(__file__).resolve().parent.parent
HEATERS = 20
LADDER = (25_000, 50_000, 100_000, 200_000, 400_000)
STEP_SECONDS = 20.0
#: the drain backlog: this many gateways for this many seconds of their traffic
DRAIN_GATEWAYS = 100_000
DRAIN_SECONDS = 40.0
GROUP = "load"
KEEPS_UP_SLOPE = 0.02
#: a lagging session queues instead of dropping
BROKER_CONFIG = "allow_anonymous true\nmax_queued_messages 0\n"
_PROGRESS = re.compile(r"^\s*[\d.]+ s: (?P<sent>\d+) msgs")
_SENT = re.compile(r"sent (?P<sent>\d+) messages .*, (?P<rows>\d+) rows, (?P<failed>\d+) failed, (?P<behind>[\d.]+) s")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Progress:
    """Reads the generator's progress lines as they come, sampling (time, sent, stored) at each."""

    def __init__(self, generator: subprocess.Popen, stored: Callable[[], int]) -> None:
        self.samples: list[tuple[float, int, int]] = []
        self.text: list[str] = []
        self._generator, self._stored = generator, stored
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._generator.stderr:
            self.text.append(line)
            if found := _PROGRESS.match(line):
                self.samples.append((time.monotonic(), int(found["sent"]), self._stored()))

    def finished(self) -> dict:
        self._generator.wait(600)
        self._thread.join(60)
        text = "".join(self.text)
        found = _SENT.search(text)
        if self._generator.returncode != 0 or not found:
            raise RuntimeError(f"the load generator failed: {text[-2000:]}")
        return {name: float(value) for name, value in found.groupdict().items()}


def _config(port: int, data_dir: Path, prefix: str) -> CloudConfig:
    return CloudConfig(data_dir=data_dir, mqtt_url=f"mqtt://127.0.0.1:{port}", topic_prefix=prefix)


def _subscribe(config: CloudConfig, names: list[str]) -> None:
    """Make each worker's persistent session, so the broker queues its share while it is away."""
    for name in names:
        worker = IngestWorker(config, client_id=name, shared_group=GROUP)
        worker.start()
        worker.stop()


def _start_workers(port: int, data_dir: Path, prefix: str, names: list[str]) -> list[subprocess.Popen]:
    command = [sys.executable, "-m", "bench.bench_load", "worker", str(port), str(data_dir), prefix]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True, "cwd": PROJECT}
    workers = [subprocess.Popen([*command, name], **pipes) for name in names]
    for worker in workers:  # each says "started" once connected and subscribed
        if worker.stdout.readline().strip() != "started":
            raise RuntimeError("an ingest worker did not start")
    return workers


def _stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.stdin.close()
    for worker in workers:
        worker.wait(60)


def _generator(port: int, prefix: str, gateways: int, rate: str, seconds: float) -> subprocess.Popen:
    iotsphere = str(Path(sys.executable).with_name("iotsphere"))
    command = [iotsphere, "sim", "load", "--gateways", str(gateways), "--heaters-per-gateway"]
    command += [str(HEATERS), "--rate", rate, "--duration", str(seconds), "--mqtt", f"mqtt://127.0.0.1:{port}"]
    command += ["--prefix", prefix, "--every", "1"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _stored(db) -> int:
    return db.execute("SELECT count(*) FROM ingested_messages").fetchone()[0]


def _dead_letters(db) -> int:
    return db.execute("SELECT count(*) FROM dead_letters").fetchone()[0]


def _live_step(port: int, folder: Path, gateways: int, workers: int = 1) -> dict:
    prefix, data_dir = f"live{gateways}-{workers}", folder / f"live{gateways}-{workers}"
    names = [f"{prefix}-w{i}" for i in range(workers)]
    config = _config(port, data_dir, prefix)
    _subscribe(config, names)
    processes = _start_workers(port, data_dir, prefix, names)
    db = open_database(config.database_path)
    cpu_before = {p.pid: _cpu_seconds(p.pid) for p in processes}
    generator = _generator(port, prefix, gateways, "1", STEP_SECONDS)
    progress = _Progress(generator, lambda: _stored(db))
    generator_cpu = 0.0
    while generator.poll() is None:
        generator_cpu = max(generator_cpu, _cpu_seconds(generator.pid))
        time.sleep(0.5)
    sent = progress.finished()
    ended = time.monotonic()
    worker_cpu = sum(_cpu_seconds(p.pid) - cpu_before[p.pid] for p in processes)
    stored_at_end = _stored(db)
    while _stored(db) < sent["sent"] and time.monotonic() < ended + 120:
        time.sleep(0.1)
    drain_s = time.monotonic() - ended
    stored, dead = _stored(db), _dead_letters(db)
    db.conn.close()
    _stop_workers(processes)
    times, offered, kept = (np.array(column, dtype=float) for column in zip(*progress.samples, strict=True))
    span = times[-1] - times[0]
    offered_rate = (offered[-1] - offered[0]) / span
    stored_rate = (kept[-1] - kept[0]) / span
    slope = float(np.polyfit(times - times[0], offered - kept, 1)[0])
    keeps_up = sent["behind"] < 1.0 and slope < KEEPS_UP_SLOPE * offered_rate and stored == sent["sent"]
    return {
        "gateways": gateways,
        "workers": workers,
        "expected_msgs_per_s": round(LoadProfile(gateways, HEATERS).messages_per_second(), 1),
        "offered_msgs_per_s": round(offered_rate, 1),
        "stored_msgs_per_s": round(stored_rate, 1),
        "stored_rows_per_s": round(stored_rate * sent["rows"] / sent["sent"], 1),
        "backlog_at_end": int(offered[-1] - kept[-1]),
        "backlog_slope_msgs_per_s": round(slope, 1),
        "drain_after_end_s": round(drain_s, 2),
        "generator_behind_s": sent["behind"],
        "dead_letters": dead,
        "lost": int(sent["sent"] - stored),
        "worker_cpu_s_per_1000_msgs": round(1000 * worker_cpu / max(stored_at_end, 1), 3),
        "generator_cpu_s_per_1000_msgs": round(1000 * generator_cpu / max(sent["sent"], 1), 3),
        "keeps_up": bool(keeps_up),
    }


def _drain(port: int, folder: Path, workers: int) -> tuple[dict, Path]:
    prefix, data_dir = f"drain{workers}", folder / f"drain{workers}"
    names = [f"{prefix}-w{i}" for i in range(workers)]
    config = _config(port, data_dir, prefix)
    _subscribe(config, names)
    generator = _generator(port, prefix, DRAIN_GATEWAYS, "1000x", DRAIN_SECONDS / 1000)
    sent = _Progress(generator, lambda: 0).finished()
    # the generator's rate is a multiplier: DRAIN_SECONDS of real-time traffic, published as fast as it can
    db = open_database(config.database_path)
    started = time.monotonic()
    processes = _start_workers(port, data_dir, prefix, names)
    cpu_before = {p.pid: _cpu_seconds(p.pid) for p in processes}
    while _stored(db) < sent["sent"]:
        if time.monotonic() - started > 600:
            raise RuntimeError(f"drain stalled at {_stored(db)} of {sent['sent']:.0f}")
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    worker_cpu = sum(_cpu_seconds(p.pid) - cpu_before[p.pid] for p in processes)
    dead = _dead_letters(db)
    db.conn.close()
    _stop_workers(processes)
    return {
        "workers": workers,
        "messages": int(sent["sent"]),
        "rows": int(sent["rows"]),
        "seconds": round(elapsed, 2),
        "msgs_per_s": round(sent["sent"] / elapsed),
        "rows_per_s": round(sent["rows"] / elapsed),
        "worker_cpu_s_per_1000_msgs": round(1000 * worker_cpu / sent["sent"], 3),
        "dead_letters": dead,
    }, config.database_path


def _bytes_per_row(database: Path) -> dict:
    """Bytes of each table with its indexes in the file (``dbstat``), per row, and the rows counted."""
    db = open_database(database)
    owners = dict(db.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')").fetchall())
    sizes: dict[str, int] = {}
    for name, size in db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall():
        table = owners.get(name, name)
        sizes[table] = sizes.get(table, 0) + size
    out = {}
    for table in ("features", "predictions", "ingested_messages", "gateway_events", "devices", "gateways"):
        rows = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        out[table] = {"rows": rows, "bytes": sizes.get(table, 0), "bytes_per_row": round(sizes.get(table, 0) / rows, 1)}
    db.conn.close()
    return out


def run() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        folder = Path(tmp)
        broker = PrivateBroker(
            folder, "allow_anonymous true\nmax_queued_messages 0\nsys_interval 1\n", persistence=False
        )
        broker.start()
        port = broker.port
        try:
            drain_one, database = _drain(port, folder, 1)
            drain_two, _ = _drain(port, folder, 2)
            storage = _bytes_per_row(database)
            live = []
            for gateways in LADDER:
                step = _live_step(port, folder, gateways)
                live.append(step)
                print(json.dumps(step), flush=True)
                if not step["keeps_up"]:
                    break
            live_two = _live_step(port, folder, live[-1]["gateways"], workers=2)
        finally:
            broker.stop()
    carried = [step["gateways"] for step in live if step["keeps_up"]]
    per_gateway = LoadProfile(1, HEATERS).messages_per_second()
    return {
        "heaters_per_gateway": HEATERS,
        "msgs_per_gateway_per_hour": round(per_gateway * 3600, 2),
        "rows_per_gateway_per_hour": round(LoadProfile(1, HEATERS).rows_per_second() * 3600, 2),
        "live_step_seconds": STEP_SECONDS,
        "live_one_worker": live,
        "live_largest_gateways_kept_up": max(carried) if carried else 0,
        "live_two_workers_at_last_step": live_two,
        "drain_one_worker": drain_one,
        "drain_two_workers": drain_two,
        "drain_one_worker_gateways_equivalent": round(drain_one["msgs_per_s"] / per_gateway),
        "storage_bytes_per_row": storage,
    }


def _worker_main(port: int, data_dir: Path, prefix: str, name: str) -> None:
    """One ingest worker of the group: says "started" once subscribed, stops when stdin closes."""
    worker = IngestWorker(_config(port, data_dir, prefix), client_id=name, shared_group=GROUP)
    worker.start()
    print("started", flush=True)
    sys.stdin.read()
    worker.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        _worker_main(int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        print(json.dumps(run(), indent=2))
