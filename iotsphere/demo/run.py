"""The whole loop on one machine: broker, cold start, signed release, API, workers, gateways, live predictions.

``run_demo`` runs each phase in turn, timing it, prints a short status line every few seconds while the
fleet runs, and always ends by stopping what it started (gateways first, broker last) and returning a
summary, also on Ctrl-C. The summary says whether the loop closed: every gateway activated the release of
each of the three model types (``component_failure``, ``usage_pattern``, ``anomaly``), the cloud stored
predictions made with each, and served one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from threadpoolctl import threadpool_limits

from cloud.alerts.worker import AlertWorker
from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.config import CloudConfig, environment
from cloud.embedded_broker import EmbeddedBroker
from cloud.ingest import IngestWorker
from cloud.releases import tuf_repo
from cloud.releases.director_worker import DirectorPublisher
from cloud.releases.publisher import PublishError, RetainedPublisher
from cloud.storage import open_database
from iotsphere.demo import cold_start
from iotsphere.demo.api_server import ApiServer
from iotsphere.demo.cloud_view import CloudView, latest_predicted_device, read_cloud_view
from iotsphere.demo.options import DemoOptions
from iotsphere.demo.sites import GatewaySpec, Site
from iotsphere.demo.world_change import WorldChangeAct, print_act_two
from shared.messages import PredictionType
from shared.topics import DEFAULT_MQTT_URL, Down, Up, down_topic, up_topic

log = logging.getLogger(__name__)

Echo = Callable[[str], None]


class DemoError(Exception):
    """The demo cannot run as asked (e.g. a data folder that is not fresh, a broker that does not answer)."""


#: failures with a message worth showing as it is: a part that could not start, too little history to train on
EXPECTED_FAILURES = (DemoError, PublishError, OSError, RuntimeError, ValueError)


def _answers(url: str) -> bool:
    """Whether an MQTT broker at ``url`` accepts a connection within a second."""
    try:
        with RetainedPublisher(url, timeout=1):
            return True
    except PublishError:
        return False


def _default_data_dir() -> Path:
    return Path("var") / f"demo-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"


def _versions_line(versions: dict[str, dict[str, str | None]], model_name: str) -> str:
    """Compact: how many gateways run which version, e.g. ``v1×2 none×1``."""
    counts: dict[str, int] = {}
    for models in versions.values():
        version = models.get(model_name)
        key = f"v{version}" if version else "none"
        counts[key] = counts.get(key, 0) + 1
    return " ".join(f"{key}×{n}" for key, n in sorted(counts.items()))


class Demo:
    def __init__(self, options: DemoOptions, echo: Echo = print):
        if options.gateways < 1 or options.heaters < 1 or options.speed <= 0 or options.duration_s <= 0:
            raise DemoError("gateways, heaters, speed and duration must all be positive")
        self.options = options
        self.echo = echo
        self.data_dir = options.data_dir or _default_data_dir()
        self.tag = secrets.token_hex(2)  # keeps ids unique on a shared broker
        self.gateway_ids = [f"gw{n}-{self.tag}" for n in range(1, options.gateways + 1)]
        self.timings: dict[str, float] = {}
        self.milestones: dict[str, float] = {}  # seconds after the gateways started
        self.interrupted = False
        self.problems: list[str] = []
        self.broker: EmbeddedBroker | None = None
        self.mqtt_url = ""
        #: the CA an ``mqtts://`` broker's certificate chains to (``IOTSPHERE_MQTT_CA``), for the in-process gateways
        self.mqtt_ca: Path | None = None
        self.config: CloudConfig | None = None
        self.passphrase = ""
        #: by model name, in training order
        self.released: dict[str, cold_start.Released] = {}
        self.api: ApiServer | None = None
        self.ingest: IngestWorker | None = None
        self.publisher: DirectorPublisher | None = None
        self.sites: list[Site] = []
        self._gateway_specs: list[GatewaySpec] = []
        self.viewer_key = ""
        #: signs in to the dashboard as an operator (promote, roll back, acknowledge alerts)
        self.operator_key = ""
        self.alerts: AlertWorker | None = None
        self.view = CloudView()
        self.answer: dict | None = None
        self.outbox_left: dict[str, int] = {}
        self.act_two: WorldChangeAct | None = None
        self._fleet_started = 0.0
        self._began = time.monotonic()

    # -- phases --------------------------------------------------------------------------------------

    @contextmanager
    def phase(self, name: str, title: str) -> Iterator[None]:
        self.echo(f"▶ {title}")
        began = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(time.monotonic() - began, 2)
        self.echo(f"  done in {self.timings[name]:.1f} s")

    def run(self) -> None:
        self._prepare_folder()
        with self.phase("broker", "MQTT broker"):
            self._start_broker()
        with self.phase("init", "Signing keys and TUF repository"):
            cold_start.init_trust(self.config, self.passphrase)
        history = self.data_dir / "history.npz"
        with self.phase(
            "history", f"Simulating {self.options.history_heaters} heaters × {self.options.history_days} days"
        ):
            cold_start.simulate_history(
                history, self.options.history_heaters, self.options.history_days, self.options.seed, self.echo
            )
        plan = ((PredictionType.COMPONENT_FAILURE, self.options.candidates), *self.options.other_candidates)
        with self.phase("training", f"Training {', '.join(t.value for t, _ in plan)}"):
            artifacts = self._train(history, plan)
        with self.phase("release", "Signing the releases into TUF and directing the fleet to them"):
            for folder in artifacts:
                released = cold_start.release(self.config, self.passphrase, folder)
                self.released[released.model_name] = released
                self.echo(f"  {released.model_name} version {released.model_version} is the fleet's desired state")
        with self.phase("cloud_start", "Cloud: API, ingest worker, director publisher"):
            self._start_cloud()
        with self.phase("gateways_start", f"{self.options.gateways} gateways × {self.options.heaters} heaters"):
            self._start_sites()
        with self.phase("live", f"Fleet live at {self.options.speed:g}× for up to {self.options.duration_s:g} s"):
            self._watch()
        if self.options.world_change is not None and self._closed():
            self.act_two = WorldChangeAct(self, self.options.world_change, self.echo)
            with self.phase("act_two", "Act two: the world changes; drift → retraining → A/B test → staged rollout"):
                self.act_two.run()

    def _train(self, history: Path, plan: tuple[tuple[PredictionType, tuple[str, ...]], ...]) -> list[Path]:
        """Artifact folders of every type in ``plan``: the first trained beside the others, one thread each.

        Training runs on one OpenMP thread (``cold_start.train``), so on two cores the quick types train while
        ``component_failure`` does (measured: 17 s for usage_pattern and anomaly together), which keeps the cold
        start as long as ``component_failure`` alone. Lines are prefixed with the type they come from.
        """

        def train(prediction_type: PredictionType, candidates: tuple[str, ...]) -> Path:
            def echo(line: str) -> None:
                self.echo(f"  [{prediction_type.value}] {line.lstrip()}")

            echo(f"candidates: {', '.join(candidates) or 'all'}")
            return cold_start.train(history, self.config, prediction_type, list(candidates) or None, echo)

        open_database(self.config.database_url).close()  # migrated once here, not by both threads at once
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="demo-train")
        try:
            with threadpool_limits(limits=1):
                first = pool.submit(train, *plan[0])
                rest = pool.submit(lambda: [train(*item) for item in plan[1:]])
                return [first.result(), *rest.result()]
        finally:  # on Ctrl-C, shut down and summarise now; a fit under way ends with the process
            pool.shutdown(wait=False, cancel_futures=True)

    def _prepare_folder(self) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise DemoError(f"{self.data_dir} is not empty: the demo needs a fresh folder")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.passphrase = secrets.token_urlsafe(18)
        secret = self.data_dir / "passphrase.txt"
        secret.touch(mode=0o600)
        secret.write_text(self.passphrase + "\n")
        self.echo(f"Demo folder: {self.data_dir}")
        self.echo(f"Signing-key passphrase (demo only): {self.passphrase}  (also in {secret})")

    def _start_broker(self) -> None:
        env = environment()
        chosen = env.model_fields_set  # what the operator set: else the demo picks its own broker and topics
        url = self.options.mqtt_url or (env.mqtt_url if "mqtt_url" in chosen else None)
        url = None if self.options.embedded_broker else url
        if url:
            with RetainedPublisher(url, timeout=5):  # reachable now, not only after a minute of training
                self.echo(f"  using the broker at {url}")
        elif not self.options.embedded_broker and _answers(DEFAULT_MQTT_URL):
            url = DEFAULT_MQTT_URL
            self.echo(f"  using the MQTT broker that answers on {url} (the embedded broker is the fallback)")
        else:
            self.broker = EmbeddedBroker().start()
            url = self.broker.url
            self.echo(f"  embedded broker (amqtt) on {url}: MQTT 3.1.1, no shared subscriptions, so one ingest worker")
        self.mqtt_url, self.mqtt_ca = url, env.mqtt_ca
        config = CloudConfig(data_dir=self.data_dir / "cloud", mqtt_url=url)
        if "topic_prefix" not in chosen:  # this demo's own topics: a shared broker carries others' too
            config = dataclasses.replace(config, topic_prefix=f"demo-{self.tag}/{config.topic_prefix}")
        if "ingest_client_id" not in chosen:
            config = dataclasses.replace(config, ingest_client_id=f"iotsphere-demo-ingest-{self.tag}")
        self.config = config
        self.echo(f"  topic prefix {config.topic_prefix}")

    def _start_cloud(self) -> None:
        db = open_database(self.config.database_url)
        try:
            keys = KeyStore(db)
            self.viewer_key = keys.create(Role.VIEWER, "demo viewer").token
            self.operator_key = keys.create(Role.OPERATOR, "demo operator").token
            gateway_keys = {g: keys.create(Role.GATEWAY, f"gateway {g}", g).token for g in self.gateway_ids}
        finally:
            db.close()
        self.api = ApiServer(self.config)
        self.api.start()
        self.ingest = IngestWorker(self.config, shared_group=None)
        self.ingest.start()
        self.publisher = DirectorPublisher(self.config, self.passphrase, interval=1.0)
        self.publisher.start()
        self.alerts = AlertWorker(self.config, self.api.url, interval=5.0)
        self.alerts.start()
        self.echo(f"  API {self.api.url}  (docs: {self.api.url}/docs)")
        self.echo(f"  viewer key: {self.viewer_key}")
        self.echo(f"  dashboard {self.api.url}/  (sign in with the operator key: {self.operator_key})")
        self._gateway_specs = [
            GatewaySpec(g, self.data_dir / "gateways" / g, gateway_keys[g]) for g in self.gateway_ids
        ]

    def _start_sites(self) -> None:
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)  # where the history ends
        trusted_root = tuf_repo.trusted_root_path(self.config)
        for n, spec in enumerate(self._gateway_specs):
            site = Site(
                spec,
                self.options.heaters,
                seed=self.options.seed + 1 + n,
                start=start,
                speed=self.options.speed,
                mqtt_url=self.mqtt_url,
                mqtt_ca=self.mqtt_ca,
                cloud_url=self.api.url,
                trusted_root=trusted_root,
                prefix=self.config.topic_prefix,
                over_mqtt=self.options.telemetry_over_mqtt,
            )
            site.start()
            self.sites.append(site)
        self._fleet_started = time.monotonic()
        self.echo(f"  gateways: {', '.join(self.gateway_ids)} (data in {self.data_dir / 'gateways'})")
        how = (
            "over MQTT on site/<gateway>/heaters/<device>/telemetry"
            if self.options.telemetry_over_mqtt
            else "in process"
        )
        self.echo(f"  heater telemetry fed {how}")

    # -- live ----------------------------------------------------------------------------------------

    def _activated(self) -> list[str]:
        """Gateways serving the release of every model."""
        return [
            s.gateway_id
            for s in self.sites
            if all(
                s.active_versions().get(name, {}).get("version") == r.model_version for name, r in self.released.items()
            )
        ]

    def _closed(self) -> bool:
        by_gateway = self.view.predictions_by_gateway
        by_model = self.view.predictions_by_model
        return (
            len(self._activated()) == len(self.sites)
            and all(by_gateway.get(g) for g in self.gateway_ids)
            and all(by_model.get(name) for name in self.released)
        )

    def _note(self, milestone: str, reached: bool) -> None:
        if reached and milestone not in self.milestones:
            self.milestones[milestone] = round(time.monotonic() - self._fleet_started, 2)

    def _watch(self) -> None:
        db = open_database(self.config.database_url)
        try:
            last_line = last_count = 0.0
            last_count_at = time.monotonic()
            while time.monotonic() - self._fleet_started < self.options.duration_s:
                time.sleep(0.5)
                self.view = read_cloud_view(db, self.gateway_ids)
                activated = self._activated()
                self._note("first_activation_s", bool(activated))
                self._note("all_activated_s", len(activated) == len(self.sites))
                self._note("first_prediction_in_cloud_s", self.view.predictions > 0)
                closed = self._closed()
                self._note("loop_closed_s", closed)
                now = time.monotonic()
                if now - last_line >= self.options.status_every_s:
                    rate = (self.view.predictions - last_count) / (now - last_count_at)
                    self.echo(self._status_line(rate))
                    last_line, last_count, last_count_at = now, self.view.predictions, now
                if closed and self.options.stop_when_closed:
                    self.echo("  the loop has closed: stopping early")
                    return
                if closed and self.options.world_change is not None:
                    self.echo("  the loop has closed: the fleet runs on into act two")
                    return
        finally:
            db.close()

    def _status_line(self, rate: float) -> str:
        view = self.view
        simulated = min(site.now for site in self.sites)
        models = "".join(f"{name} {_versions_line(view.versions, name)} | " for name in self.released)
        return (
            f"  [{time.monotonic() - self._fleet_started:4.0f} s] sim {simulated:%Y-%m-%d %H:%M} | "
            f"online {view.gateways_online}/{len(self.sites)} | {models}"
            f"predictions {view.predictions:,} ({rate:,.0f}/s) | dead letters {view.dead_letters}"
        )

    # -- ending --------------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop everything that started, in reverse order; collect the final figures while the cloud still runs."""
        began = time.monotonic()
        for site in self.sites:
            self.outbox_left[site.gateway_id] = site.stop()
        if self.ingest is not None:
            self._let_ingest_settle()
            self._read_cloud()
        for worker in (self.alerts, self.publisher, self.ingest, self.api, self.broker):
            if worker is not None:
                worker.stop()
        if self.broker is None and self.config is not None:
            self._clear_retained()
        self.timings["shutdown"] = round(time.monotonic() - began, 2)

    def _read_cloud(self) -> None:
        """What the cloud stored, and one question to its API, for the summary."""
        db = open_database(self.config.database_url)
        try:
            self.view = read_cloud_view(db, self.gateway_ids)
            device = latest_predicted_device(db, PredictionType.COMPONENT_FAILURE.value)
        finally:
            db.close()
        if device is not None and self.api is not None:
            self._ask_api(device)

    def serve(self, seconds: float) -> None:
        """Print the summary so far, then keep everything running ``seconds`` (``inf``: until Ctrl-C) for the pages."""
        self._read_cloud()
        print_summary(self.summary(), self.echo)
        until = "until Ctrl-C" if seconds == float("inf") else f"for {seconds:g} s"
        self.echo(f"── serving {until}: gateways, cloud and dashboard keep running ──")
        self.echo(f"  dashboard {self.api.url}/  (sign in with the operator key: {self.operator_key})")
        self.echo(f"  alerts {self.api.url}/alerts, models {self.api.url}/models, API docs {self.api.url}/docs")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def _clear_retained(self) -> None:
        """Leave nothing of this run retained on a broker that outlives it (director documents, statuses)."""
        prefix = self.config.topic_prefix
        topics = [down_topic(g, Down.DESIRED, prefix) for g in self.gateway_ids]
        topics += [up_topic(g, Up.STATUS, prefix) for g in self.gateway_ids]
        try:
            with RetainedPublisher(self.mqtt_url, timeout=5) as publisher:
                for topic in topics:
                    publisher.publish(topic, b"")
        except PublishError as exc:
            self.echo(f"  could not clear this run's retained messages: {exc}")

    def _let_ingest_settle(self, quiet_s: float = 1.0, limit_s: float = 10.0) -> None:
        """Wait until ingest has received nothing new for ``quiet_s`` (what the agents flushed is stored)."""
        deadline = time.monotonic() + limit_s
        seen, since = self.ingest.stats.received, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
            time.sleep(0.1)
            if self.ingest.stats.received != seen:
                seen, since = self.ingest.stats.received, time.monotonic()

    def _ask_api(self, device_id: str) -> None:
        url = f"{self.api.url}/api/predictions/water-heaters/{device_id}/{PredictionType.COMPONENT_FAILURE.value}"
        try:
            response = httpx.get(url, headers={"X-API-Key": self.viewer_key}, timeout=10)
        except httpx.HTTPError as exc:
            self.problems.append(f"the prediction route did not answer: {exc}")
            return
        if response.status_code != 200:
            self.problems.append(f"the prediction route answered {response.status_code}: {response.text[:200]}")
            return
        self.answer = {"url": url, "status": response.status_code, "body": response.json()}

    def summary(self) -> dict:
        gateways = {
            site.gateway_id: {
                "active": {m: s["version"] for m, s in site.active_versions().items()},
                "state": {m: s["state"] for m, s in site.active_versions().items()},
                "reported_to_cloud": self.view.versions.get(site.gateway_id, {}),
                "directed": self.view.directed.get(site.gateway_id, {}),
                "predictions_in_cloud": self.view.predictions_by_gateway.get(site.gateway_id, 0),
                "readings_sent": site.readings,
                "bad_messages_at_agent": dict(site.agent.quarantine.counts),
                "outbox_left": self.outbox_left.get(site.gateway_id),
            }
            for site in self.sites
        }
        problems = list(self.problems)
        act_two = self.act_two.summary() if self.act_two else None
        rolled_out = act_two["rollout"] if act_two and act_two["completed"] else {}
        if self.released and self.sites:
            for name, released in self.released.items():
                version = released.model_version
                serving = rolled_out["version"] if rolled_out.get("model_name") == name else version
                # a gateway runs what the cloud last directed it to: a staged rollout's canary in flight when act
                # two's budget ran out is right to run the challenger while the rest run production
                missing = [
                    g
                    for g, s in gateways.items()
                    if s["active"].get(name) not in {serving, self.view.directed.get(g, {}).get(name)}
                ]
                if missing:
                    problems.append(f"{name} version {serving} not active on {', '.join(missing)}")
                if not self.view.predictions_by_model.get(name, {}).get(version):
                    problems.append(f"the cloud received no {name} prediction made with version {version}")
            silent = [g for g, s in gateways.items() if not s["predictions_in_cloud"]]
            if silent and self.view.predictions:
                problems.append(f"no prediction from {', '.join(silent)} reached the cloud")
            if self.answer is None and not any("prediction route" in p for p in problems):
                problems.append("the prediction route was not queried: no device had a prediction")
        elif not self.interrupted:
            problems.append("the demo stopped before the gateways started")
        self.timings["total"] = round(time.monotonic() - self._began, 2)
        return {
            "ok": not problems and not self.interrupted,
            "interrupted": self.interrupted,
            "problems": problems,
            "data_dir": str(self.data_dir),
            "mqtt_url": self.mqtt_url,
            "embedded_broker": self.broker is not None,
            "topic_prefix": self.config.topic_prefix if self.config else None,
            "telemetry": "mqtt" if self.options.telemetry_over_mqtt else "in-process",
            "api_url": self.api.url if self.api else None,
            "models": [dataclasses.asdict(released) for released in self.released.values()],
            "gateways": gateways,
            "predictions_received": self.view.predictions,
            "predictions_by_model": self.view.predictions_by_model,
            "features_received": self.view.features,
            "rejected_updates": self.view.rejected_updates,
            "dead_letters": self.view.dead_letters,
            "simulated_until": min(s.now for s in self.sites).isoformat() if self.sites else None,
            "api_answer": self.answer,
            "act_two": act_two,
            "timings_s": self.timings,
            "milestones_after_gateways_start_s": self.milestones,
        }


def print_summary(summary: dict, echo: Echo) -> None:
    echo("── summary ──")
    for model in summary["models"]:
        echo(f"model: {model['model_name']} v{model['model_version']} ({model['estimator']}, {model['metrics']})")
    for gateway_id, gateway in summary["gateways"].items():
        active = ", ".join(f"{m} v{v} ({gateway['state'][m]})" for m, v in gateway["active"].items()) or "no model"
        echo(f"  {gateway_id}: {active}; {gateway['predictions_in_cloud']:,} predictions in the cloud")
    by_model = ", ".join(
        f"{name} v{version} {n:,}"
        for name, versions in summary["predictions_by_model"].items()
        for version, n in versions.items()
    )
    echo(
        f"predictions received by the cloud: {summary['predictions_received']:,} ({by_model}); "
        f"features {summary['features_received']:,}; rejected updates {summary['rejected_updates']}; "
        f"dead letters {summary['dead_letters']}"
    )
    if summary["api_answer"]:
        body = summary["api_answer"]["body"]
        outputs = ", ".join(f"{k} {v:.3f}" for k, v in body["outputs"].items())
        echo(f"GET {summary['api_answer']['url']} → {summary['api_answer']['status']}")
        echo(f"  {body['device_id']} (model v{body['model_version']}, window {body['feature_window_end']}): {outputs}")
    if summary["act_two"]:
        print_act_two(summary["act_two"], echo)
    echo("timings (s): " + ", ".join(f"{k} {v}" for k, v in summary["timings_s"].items()))
    if summary["milestones_after_gateways_start_s"]:
        echo(
            "after the gateways started (s): "
            + ", ".join(f"{k} {v}" for k, v in summary["milestones_after_gateways_start_s"].items())
        )
    for problem in summary["problems"]:
        echo(f"PROBLEM: {problem}")


def run_demo(options: DemoOptions, echo: Echo = print) -> dict:
    """Run the demo and return its summary (also written to ``options.summary_json``); Ctrl-C ends it cleanly."""
    demo = Demo(options, echo)
    try:
        demo.run()
        if options.serve_s is not None and demo.api is not None:
            try:
                demo.serve(options.serve_s)
            except KeyboardInterrupt:  # how serving ends: not an interrupted demo
                echo("stopping gateways, workers, server and broker")
    except KeyboardInterrupt:
        demo.interrupted = True
        echo("interrupted: stopping gateways, workers, server and broker")
    finally:
        demo.shutdown()
    summary = demo.summary()
    print_summary(summary, echo)
    if options.summary_json is not None:
        options.summary_json.parent.mkdir(parents=True, exist_ok=True)
        options.summary_json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        echo(f"summary written to {options.summary_json}")
    return summary
