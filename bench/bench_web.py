"""What the Fleet and Gateway pages cost at fleet scale: server-side render time and what a browser downloads.

Method.
- Seed (through the data-layer owners' bulk writes, into a fresh store at the newest revision): GATEWAYS gateways
  (one in twenty offline, one in a hundred stale, one in ten serving version 2 and the rest version 3),
  HEATERS_PER_GATEWAY devices each, every gateway directed to version 3 by a document issued to it a day ago with
  the download, activate and commit events of it (one in two hundred only downloading: overdue), one technician
  outcome per gateway, and predictions spread over the devices (the pages do not read predictions; they are there
  so the store is the size the issue names, as far as a few minutes of seeding allow). One gateway (BUSY) has a
  long history: HISTORY events, HISTORY // 5 documents issued, HISTORY // 2 outcomes and a few security events, so
  its timeline pages walk real index ranges.
- Twice: on SQLite (PREDICTIONS predictions) and on the machine's PostgreSQL in a schema of its own, dropped
  afterwards (POSTGRES_PREDICTIONS predictions, to keep the run within minutes: the pages read none).
- Serve it with a real ``iotsphere cloud serve`` (workers off) on loopback, sign in as a viewer over HTTP, and time
  REQUESTS GETs of each page after WARMUP: the fleet's first page, filtered pages (stale gateways, one in a
  hundred, read off their index; version 2 served, one in ten, read from each status's JSON; overdue deployments,
  one in two hundred, from the deployment census), a search by id prefix, a deep page (after 90 % of the ids), a
  gateway page and its timeline's second page, and the model page (MODEL_VERSIONS versions, PROMOTIONS entries of
  what was live when). p50 and p95 in milliseconds, client-side (request to last byte),
  target TARGET_P95_MS. The first filter by deployment state waits for the process's first census (every
  deployment derived once): ``census_first_wait_s``; later ones (every 30 s while pages are asked for) run beside
  the timed requests, so the p95s include them.
- Transfer: the bytes a browser downloads for the page with a cold cache: the HTML plus every stylesheet and script
  it links, over the wire (``Accept-Encoding: gzip``, as browsers send) and uncompressed, target TARGET_KB.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import text

from bench.bench_ingest import _free_port
from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.data import director, fleet, models, predictions
from cloud.data.connections import write_transaction
from cloud.data.engine import create as create_engine
from cloud.data.postgres import dispose_engines
from cloud.data.times import iso
from cloud.storage import open_database
from tests.postgres_run import SERVER, schema_url

GATEWAYS = 100_000
HEATERS_PER_GATEWAY = 10
PREDICTIONS = 10_000_000
POSTGRES_PREDICTIONS = 1_000_000
HISTORY = 2_000
#: the model page's model: this many versions, promoted and rolled back this many times
MODEL_VERSIONS = 20
PROMOTIONS = 200
BUSY = "gw-004242"
CHUNK = 10_000
WARMUP = 3
REQUESTS = 40
TARGET_P95_MS = 200.0
TARGET_KB = 300.0
#: how long the first filter by deployment state may wait for its census (each try waits up to two minutes)
CENSUS_BUDGET_S = 900
NAME = "component_failure"
NOW = datetime.now(UTC)


def _gateway(n: int) -> str:
    return f"gw-{n:06d}"


def _statuses(start: int, end: int) -> list[tuple]:
    rows = []
    for n in range(start, end):
        online = n % 20 != 7
        seen = NOW - timedelta(hours=2) if n % 100 == 3 else NOW
        version = "2" if n % 10 == 5 else "3"
        models = [{"model_name": NAME, "active_version": version, "installed_versions": ["2", "3"], "state": "ok"}]
        status = {"online": online, "agent_version": "1.4.0", "models": models, "health": "ok", "heaters": 10}
        rows.append((_gateway(n), iso(seen), iso(seen), int(online), "1.4.0", 1, json.dumps(status)))
    return rows


def _document(sequence: int, issued_at: str) -> str:
    return json.dumps({"signed": {"issued_at": issued_at, "sequence": sequence, "models": {NAME: {"version": "3"}}}})


def _seed_gateways(connection, start: int, end: int) -> None:
    issued_at = (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    at = iso(NOW - timedelta(days=1))
    fleet.record_statuses(connection, _statuses(start, end))
    fleet.record_devices_seen(
        connection,
        [
            (f"wh-{n:06d}-{h:02d}", _gateway(n), "heater", at, at)
            for n in range(start, end)
            for h in range(HEATERS_PER_GATEWAY)
        ],
    )
    events, outcomes = [], []
    for n in range(start, end):
        gateway, digest = _gateway(n), f"{n:064x}"
        director.store_document(connection, gateway, 1, _document(1, issued_at))
        director.record_issued(connection, digest, gateway, 1, at)
        kinds = ("download",) if n % 200 == 11 else ("download", "activate", "commit")  # overdue: still downloading
        events += [
            (f"e-{n}-{kind}", gateway, kind, NAME, "3", 1, None, None, iso(NOW - timedelta(hours=20 - i)), digest)
            for i, kind in enumerate(kinds)
        ]
        outcomes.append(
            (f"o-{n}", f"wh-{n:06d}-00", "technician", at, None, "anode", "ok", None, "ana", None, gateway, at)
        )
    fleet.add_events(connection, events)
    predictions.add_outcomes(connection, outcomes)


def _seed_busy(connection) -> None:
    """BUSY's long history: HISTORY events, documents, outcomes and security events a minute apart."""
    start = NOW - timedelta(days=30)
    events, outcomes = [], []
    for i in range(HISTORY):
        at = iso(start + timedelta(minutes=i))
        kind = ("download", "activate", "commit", "health", "reject")[i % 5]
        rule = "golden_vectors" if kind == "reject" else None
        events.append((f"busy-{i}", BUSY, kind, NAME, "3", i // 5 + 2, rule, "detail", at, None))
        if i % 5 == 0:
            sequence = i // 5 + 2
            director.record_issued(connection, f"busy-doc-{i:060d}", BUSY, sequence, at)
        if i % 2 == 0:
            outcomes.append((f"busy-o-{i}", f"wh-004242-{i % 10:02d}", "technician", at, None, "anode", "ok", None,
                             "ana", "noted", BUSY, at))  # fmt: skip
    for i in range(5):
        events.append((f"busy-forged-{i}", BUSY, "reject", NAME, "3", 9, "director.signature", "forged",
                       iso(start + timedelta(minutes=i * 7 + 3)), f"{i:064x}"[::-1]))  # fmt: skip
    fleet.add_events(connection, events)
    predictions.add_outcomes(connection, outcomes)


def _seed_model(connection) -> None:
    """NAME's MODEL_VERSIONS versions, each with metrics, lineage and a passed evaluation, and PROMOTIONS entries of
    what was live when (every fourth a rollback)."""
    for v in range(1, MODEL_VERSIONS + 1):
        lineage = {"dataset_id": f"ds-{v}", "dataset_sha256": f"{v:064x}", "training_run": f"run-{v}"}
        models.add_version(connection, {
            "model_name": NAME, "model_version": str(v), "prediction_type": "component_failure",
            "status": "production" if v == 3 else "archived", "created_at": iso(NOW - timedelta(days=60 - v)),
            "metrics_json": json.dumps({"roc_auc": 0.9, "brier": 0.08, "precision": 0.8, "recall": 0.7}),
            "lineage_json": json.dumps(lineage), "model_sha256": f"{v:064x}", "model_target": f"{NAME}/{v}.onnx",
            "evaluation_passed": 1, "evaluation_json": json.dumps({"roc_auc": 0.9, "baseline_roc_auc": 0.85}),
        })  # fmt: skip
    for i in range(PROMOTIONS):
        to, rollback = i % MODEL_VERSIONS + 1, i % 4 == 3
        models.add_history(connection, {
            "at": iso(NOW - timedelta(hours=PROMOTIONS - i)), "actor": "cli:alice", "model_name": NAME,
            "device_type": None, "from_version": str(max(to - 1, 1)), "to_version": str(to),
            "action": "rollback" if rollback else "promote", "reason": f"reason {i}", "override": 0,
        })  # fmt: skip


def _seed_predictions(connection, start: int, end: int) -> None:
    devices = GATEWAYS * HEATERS_PER_GATEWAY
    rows = []
    for p in range(start, end):
        device = p % devices
        n, h = divmod(device, HEATERS_PER_GATEWAY)
        made = iso(NOW - timedelta(seconds=p))
        rows.append((f"p-{p}", "champion", f"wh-{n:06d}-{h:02d}", "heater", "component_failure", NAME, "3",
                     '{"probabilities": [[0.9, 0.1]]}', 3.0, made, made, _gateway(n), f"m-{p // 100}"))  # fmt: skip
    predictions.add_predictions(connection, rows)


def seed(database_url: str, predictions_count: int) -> dict:
    """The store the pages are timed on; what was seeded and how long it took."""
    started = time.perf_counter()
    db = open_database(database_url)
    try:
        for start in range(0, GATEWAYS, CHUNK):
            with write_transaction(db) as connection:
                _seed_gateways(connection, start, min(start + CHUNK, GATEWAYS))
        with write_transaction(db) as connection:
            _seed_busy(connection)
            _seed_model(connection)
        gateways_seconds = time.perf_counter() - started
        for start in range(0, predictions_count, CHUNK * 10):
            with write_transaction(db) as connection:
                _seed_predictions(connection, start, min(start + CHUNK * 10, predictions_count))
        token = KeyStore(db).create(Role.VIEWER, "bench viewer").token
        with write_transaction(db) as connection:
            connection.execute(text("ANALYZE"))
    finally:
        db.close()
    return {
        "token": token,
        "gateways": GATEWAYS,
        "devices": GATEWAYS * HEATERS_PER_GATEWAY,
        "gateway_events": GATEWAYS * 3 - 2 * len(range(11, GATEWAYS, 200)) + HISTORY + 5,
        "overdue_gateways": len(range(11, GATEWAYS, 200)),
        "documents_issued": GATEWAYS + HISTORY // 5,
        "outcomes": GATEWAYS + HISTORY // 2,
        "predictions": predictions_count,
        "model_versions": MODEL_VERSIONS,
        "model_history": PROMOTIONS,
        "seed_gateways_seconds": round(gateways_seconds, 1),
        "seed_seconds": round(time.perf_counter() - started, 1),
    }


def _serve(data_dir: Path, database_url: str | None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    iotsphere = Path(sys.executable).with_name("iotsphere")
    workers_off = ["--no-ingest", "--no-publisher", "--no-training", "--no-rollouts", "--no-alerts"]
    command = [iotsphere, "cloud", "serve", "--port", str(port), "--data-dir", str(data_dir), *workers_off]
    environment = {k: v for k, v in os.environ.items() if k != "IOTSPHERE_DATABASE_URL"}
    if database_url is not None:
        environment["IOTSPHERE_DATABASE_URL"] = database_url
    server = subprocess.Popen([*command, "--mqtt", "mqtt://127.0.0.1:1883"], stderr=subprocess.DEVNULL, env=environment)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base_url}/healthz").status_code == 200:
                return server, base_url
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.terminate()
            raise RuntimeError("cloud serve did not start")
        time.sleep(0.2)


def _assets(html: str) -> list[str]:
    return re.findall(r'<(?:link rel="stylesheet" href|script src)="(/[^"]+)"', html)


def _time_page(client: httpx.Client, path: str, expect: str) -> dict:
    seconds, page = [], None
    for i in range(WARMUP + REQUESTS):
        started = time.perf_counter()
        page = client.get(path)
        elapsed = time.perf_counter() - started
        if page.status_code != 200 or expect not in page.text:
            raise RuntimeError(f"{path} answered {page.status_code} without {expect!r}")
        if i >= WARMUP:
            seconds.append(elapsed * 1000)
    assert page is not None
    answers = [page, *(client.get(asset) for asset in _assets(page.text))]
    transfer = sum(answer.num_bytes_downloaded for answer in answers)
    cuts = statistics.quantiles(seconds, n=20)
    return {
        "p50_ms": round(statistics.median(seconds), 1),
        "p95_ms": round(cuts[18], 1),
        "html_kb": round(len(page.content) / 1000, 1),
        "html_wire_kb": round(page.num_bytes_downloaded / 1000, 1),
        "transfer_kb": round(transfer / 1000, 1),
        "transfer_uncompressed_kb": round(sum(len(answer.content) for answer in answers) / 1000, 1),
        "gzip": all(answer.headers.get("content-encoding") == "gzip" for answer in answers),
        "assets": sorted(_assets(page.text)),
        "within_target": cuts[18] <= TARGET_P95_MS and transfer / 1000 <= TARGET_KB,
    }


def _time_pages(data_dir: Path, database_url: str | None, token: str) -> dict:
    """Serve the seeded store and time every page; the first census's wait apart."""
    server, base_url = _serve(data_dir, database_url)
    try:
        with httpx.Client(base_url=base_url, timeout=300) as client:
            answer = client.post("/login", data={"api_key": token, "next": "/fleet"})
            if answer.status_code != 303:
                raise RuntimeError(f"sign-in answered {answer.status_code}")
            started = time.perf_counter()
            while (first := client.get("/fleet?deployment=overdue")).status_code == 503:  # still counting
                if time.perf_counter() - started > CENSUS_BUDGET_S:
                    raise RuntimeError("no deployment census within the budget")
            if "gw-000011" not in first.text:
                raise RuntimeError("the census found no overdue gateway")
            census_wait = time.perf_counter() - started
            busy = client.get(f"/fleet/{BUSY}").text
            older = re.search(rf'href="/fleet/{BUSY}\?before=([^"]+)"', busy)
            if older is None:
                raise RuntimeError("the busy gateway's timeline has no second page")
            deep, middle = _gateway(GATEWAYS * 9 // 10), _gateway(GATEWAYS // 2)
            pages = {
                "fleet_first_page": ("/fleet", "gw-000049"),
                "fleet_filtered_stale": ("/fleet?state=stale", "gw-000003"),
                "fleet_filtered_version": ("/fleet?version=2", "gw-000005"),
                "fleet_filtered_overdue": ("/fleet?deployment=overdue", "gw-000211"),
                "fleet_search_prefix": (f"/fleet?q={middle[:-2]}", middle),
                "fleet_deep_page": (f"/fleet?after={deep}", _gateway(GATEWAYS * 9 // 10 + 50)),
                "gateway_page": (f"/fleet/{BUSY}", "golden_vectors"),
                "gateway_timeline_page_2": (f"/fleet/{BUSY}?before={older.group(1)}", "golden_vectors"),
                "model_page": (f"/models/{NAME}", "reason 199"),
            }
            timed = {name: _time_page(client, path, expect) for name, (path, expect) in pages.items()}
    finally:
        server.terminate()
        server.wait(30)
    return {
        "census_first_wait_s": round(census_wait, 1),
        "pages": timed,
        "all_within_target": all(page["within_target"] for page in timed.values()),
    }


def _sqlite() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        data_dir = Path(tmp) / "cloud"
        database = data_dir / "iotsphere.db"
        seeded = seed(str(database), PREDICTIONS)
        seeded["database_mb"] = round(database.stat().st_size / 1e6)
        token = seeded.pop("token")
        return {"seeded": seeded, **_time_pages(data_dir, None, token)}


@contextmanager
def _postgres_schema():
    """The URL of a schema of its own on the machine's PostgreSQL, dropped with everything in it afterwards."""
    schema, admin = f"bench_web_{uuid.uuid4().hex[:8]}", create_engine(SERVER)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield schema_url(schema)
    finally:
        dispose_engines()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _postgresql() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-web-pg-") as tmp, _postgres_schema() as url:
        seeded = seed(url, POSTGRES_PREDICTIONS)
        token = seeded.pop("token")
        return {"seeded": seeded, **_time_pages(Path(tmp) / "cloud", url, token)}


def run() -> dict:
    figures = {
        "requests_per_page": REQUESTS,
        "target_p95_ms": TARGET_P95_MS,
        "target_transfer_kb": TARGET_KB,
        "sqlite": _sqlite(),
        "postgresql": _postgresql(),
        "cpus": os.cpu_count(),
    }
    figures["all_within_target"] = figures["sqlite"]["all_within_target"] and figures["postgresql"]["all_within_target"]
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
