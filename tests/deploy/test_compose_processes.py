"""docker-compose.yml, run as processes (issue 13 §4): no container engine runs here, so this test reads the compose
file and starts each of its services with the service's own command, entrypoint and environment, in depends_on
order, waiting on each condition as compose does (a one-shot's exit 0, a healthcheck's command passing). Only what
the container network and volumes mean changes, through the table ``_Deployment.network`` shows and the mounts of
each service (tests/deploy/shipped_broker.py): the broker is Mosquitto on the shipped config (TLS, passwords, ACLs)
with the secrets deploy/make_secrets.py made, PostgreSQL is the machine's, in a schema of this test's own.

It checks the loop closes: init's signed model is activated (and committed) on both gateways, their predictions
reach PostgreSQL through two ingest workers, and an operator's promotion of a new version reaches both gateways."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from graphlib import TopologicalSorter
from pathlib import Path

import httpx
import pytest
import yaml

from tests.deploy.shipped_broker import COMPOSE, PROJECT, ShippedBroker, compose_env, make_secrets, mounts
from tests.observability.scrape import parse
from tests.postgres.test_end_to_end import schema  # noqa: F401 (the fixture)
from tests.postgres_run import schema_url
from tests.private_broker import free_port

pytestmark = pytest.mark.postgres

#: services something else stands in for here
STAND_INS = {
    "postgres": "the machine's PostgreSQL (127.0.0.1:5432, database test), in a fresh schema",
    "mosquitto": "mosquitto on deploy/mosquitto's config (ShippedBroker: only its port and paths rewritten)",
}
#: services not started, and why
NOT_STARTED = {
    "prometheus": "monitoring, not the loop (tests/observability runs Prometheus on deploy/prometheus)",
    "alertmanager": "monitoring, not the loop (tests/observability checks deploy/alertmanager)",
    "grafana": "monitoring, not the loop (tests/observability checks its dashboard's queries)",
}
IMAGE_ENTRYPOINT = ["iotsphere"]  # deploy/Dockerfile's ENTRYPOINT
GATEWAYS = ("gw-1", "gw-2")
MODEL = "anomaly"  # what the init service trains first (INIT_MODEL)
#: what a loaded 2-core machine may take for init (measured 41-74 s) or for an API to become healthy
START_TIMEOUT_S = 300.0
#: and for each step of the loop (measured 40-45 s)
LOOP_TIMEOUT_S = 180.0
_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?::([?-])([^}]*))?\}")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's substitution: ``${VAR}``, ``${VAR:?error}``, ``${VAR:-default}``, and ``$$`` for a ``$``."""

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, kind, word = match.groups()
        if variables.get(name):
            return variables[name]
        assert kind != "?", f"compose would refuse to start: {name} unset ({word})"
        return word if kind == "-" else ""

    return _VARIABLE.sub(substitute, value)


def _depends_on(service: dict) -> dict[str, str]:
    depends = service.get("depends_on", {})
    if isinstance(depends, list):
        return {name: "service_started" for name in depends}
    return {name: condition["condition"] for name, condition in depends.items()}


class _Deployment:
    """The compose file's services as processes on this machine."""

    def __init__(self, folder: Path, secrets_dir: Path, broker_port: int, schema: str) -> None:  # noqa: F811
        self.services: dict[str, dict] = yaml.safe_load(COMPOSE.read_text())["services"]
        self.folder, self.secrets_dir = folder, secrets_dir
        self.variables = compose_env(secrets_dir)
        #: the port each listening service's --port gets here
        self.ports = {name: free_port() for name in self.services if self._listen_port(name)}
        #: the compose network's names → what answers for them here (applied after ${VAR} substitution)
        self.network: list[tuple[str, str]] = [
            (r"postgresql://[^@/\s]+@postgres:5432/iotsphere", schema_url(schema)),
            (r"@mosquitto:8883\b", f"@127.0.0.1:{broker_port}"),  # the broker's certificate names 127.0.0.1
            (r"--host 0\.0\.0\.0\b", "--host 127.0.0.1"),  # loopback only
            *(
                (rf"\b{re.escape(name)}:{self._listen_port(name)}\b", f"127.0.0.1:{port}")
                for name, port in self.ports.items()
            ),
        ]
        self.processes: dict[str, subprocess.Popen] = {}

    def _listen_port(self, name: str) -> int | None:
        command = self.services[name].get("command", [])
        return int(command[command.index("--port") + 1]) if isinstance(command, list) and "--port" in command else None

    def localize(self, name: str, value: str) -> str:
        """``value`` as service ``name`` would see it, here: variables substituted, network names and the service's
        own listening port mapped, container paths put under its root (its mounts linked there)."""
        value = interpolate(value, self.variables)
        for pattern, replacement in self.network:
            value = re.sub(pattern, replacement, value)
        if (port := self._listen_port(name)) is not None:
            value = re.sub(rf"(--port |127\.0\.0\.1:){port}\b", rf"\g<1>{self.ports[name]}", value)
        root = self._root(name)
        if tops := sorted(entry.name for entry in root.iterdir()):
            path = r"(?<![\w.:/-])/(?:" + "|".join(map(re.escape, tops)) + r")(?=/|$|\s|\))"
            value = re.sub(path, lambda match: f"{root}{match.group(0)}", value)
        return value

    def _root(self, name: str) -> Path:
        """The service's filesystem: each mount a link at its container path."""
        root = self.folder / "roots" / name
        if not root.exists():
            root.mkdir(parents=True)
            for target, host in mounts(name, self.secrets_dir, self.folder / "volumes").items():
                link = root / target.lstrip("/")
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(host)
        return root

    def argv(self, name: str) -> list[str]:
        service = self.services[name]
        command = service.get("command", [])
        command = shlex.split(command) if isinstance(command, str) else command
        return shlex.split(self.localize(name, shlex.join([*service.get("entrypoint", IMAGE_ENTRYPOINT), *command])))

    def environment(self, name: str) -> dict[str, str]:
        """The service's environment alone, with the image's PATH (this venv's ``iotsphere`` first)."""
        own = {
            key: self.localize(name, str(value)) for key, value in self.services[name].get("environment", {}).items()
        }
        workdir = self.folder / "workdirs" / name
        workdir.mkdir(parents=True, exist_ok=True)
        return {"PATH": f"{PROJECT / '.venv' / 'bin'}:/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8", **own}

    def start(self, name: str) -> None:
        with (self.folder / f"{name}.log").open("w") as log:
            self.processes[name] = subprocess.Popen(
                self.argv(name),
                env=self.environment(name),
                cwd=self.folder / "workdirs" / name,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # `sh -c` and what it runs stop together
            )

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()[-4000:]

    def wait_for(self, name: str, condition: str) -> None:
        """Block until ``name`` meets a depends_on ``condition``, as compose does before starting a dependant."""
        if name in STAND_INS or condition == "service_started":
            return
        if condition == "service_completed_successfully":
            code = self.processes[name].wait(START_TIMEOUT_S)
            assert code == 0, f"{name} exited {code}:\n{self.log(name)}"
            return
        assert condition == "service_healthy", condition
        test = self.services[name]["healthcheck"]["test"]
        assert test[0] == "CMD", test
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.exec_in(name, test[1:]).returncode != 0:
            assert self.processes[name].poll() is None, f"{name} exited:\n{self.log(name)}"
            assert time.monotonic() < deadline, f"{name} never became healthy:\n{self.log(name)}"
            time.sleep(1)

    def exec_in(self, name: str, argv: list[str]) -> subprocess.CompletedProcess:
        """``docker compose exec <name> <argv>``: a command in the service's environment and filesystem."""
        return subprocess.run(
            shlex.split(self.localize(name, shlex.join(argv))),
            env=self.environment(name),
            cwd=self.folder / "workdirs" / name,
            capture_output=True,
            text=True,
            timeout=LOOP_TIMEOUT_S,
        )

    def stop(self) -> None:
        """Every process group, newest first: SIGTERM, then SIGKILL for what has not exited in 20 s."""
        for process in reversed(self.processes.values()):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


@pytest.fixture
def deployment(tmp_path: Path, schema: str) -> Iterator[_Deployment]:  # noqa: F811
    """make_secrets.py as the operator runs it, then every service the compose file names, in depends_on order."""
    secrets_dir = tmp_path / "deploy"
    made = make_secrets(secrets_dir, *(arg for gateway in GATEWAYS for arg in ("--gateway", gateway)))
    assert made.returncode == 0, made.stderr
    with ShippedBroker(tmp_path / "broker", secrets_dir) as broker:
        running = _Deployment(tmp_path, secrets_dir, broker.port, schema)
        services = running.services
        unaccounted = set(services) - set(STAND_INS) - set(NOT_STARTED)
        order = TopologicalSorter({name: set(_depends_on(services[name])) for name in services}).static_order()
        began = time.monotonic()
        try:
            for name in order:
                if name not in unaccounted:
                    continue
                for dependency, condition in _depends_on(services[name]).items():
                    assert dependency not in NOT_STARTED, f"{name} depends on {dependency}, which is not started"
                    running.wait_for(dependency, condition)
                running.start(name)
            print(f"every service started {time.monotonic() - began:.0f} s after the broker (init included)")
            yield running
        finally:
            running.stop()


def _eventually(check: Callable[[], object], what: str, deployment: _Deployment, timeout: float = LOOP_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {name}\n{deployment.log(name)}" for name in deployment.processes)
            raise AssertionError(f"{what}: not within {timeout} s\n{logs}")
        time.sleep(1)
    return result


def _operator(deployment: _Deployment, *args: str) -> str:
    """An operator's command in the api service (``docker compose exec api iotsphere ...``)."""
    done = deployment.exec_in("api", ["iotsphere", *args])
    assert done.returncode == 0, f"iotsphere {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def _committed(deployment: _Deployment, version: str) -> bool:
    rows = json.loads(_operator(deployment, "deployments", "list", "--model", MODEL, "--json"))
    return {row["gateway_id"]: (row["version"], row["state"]) for row in rows} == {
        gateway: (version, "committed") for gateway in GATEWAYS
    }


def test_every_compose_service_is_started_here_or_said_why_not() -> None:
    services = set(yaml.safe_load(COMPOSE.read_text())["services"])
    assert not set(STAND_INS) & set(NOT_STARTED)
    assert set(STAND_INS) | set(NOT_STARTED) <= services, "a listed service is gone from the compose file"
    started = services - set(STAND_INS) - set(NOT_STARTED)
    assert started == {"init", "api", "ingest-1", "ingest-2", "worker", "gateway-1", "site-1", "gateway-2", "site-2"}


def test_prometheus_scrapes_every_cloud_process_the_compose_file_runs() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    processes = {
        f"{name}:{command[command.index('--port') + 1]}"
        for name, service in services.items()
        if (command := service.get("command", []))[:2] == ["cloud", "serve"]
    }
    prometheus = PROJECT / "deploy" / "prometheus"
    targets = set()
    for job in yaml.safe_load((prometheus / "prometheus.yml").read_text())["scrape_configs"]:
        for config in job.get("static_configs", []):
            targets.update(config["targets"])
        for config in job.get("file_sd_configs", []):
            for pattern in config["files"]:
                for found in prometheus.glob(pattern):
                    targets.update(t for group in yaml.safe_load(found.read_text()) for t in group["targets"])
    assert processes == {"api:8080", "ingest-1:9464", "ingest-2:9464", "worker:9465"}
    assert targets == processes


def test_the_compose_deployment_closes_the_loop_as_processes(deployment: _Deployment) -> None:
    started = time.monotonic()
    _eventually(lambda: _committed(deployment, "1"), "init's signed model committed on both gateways", deployment)
    committed = time.monotonic()

    def predicted() -> set[str]:
        rows = json.loads(_operator(deployment, "predictions", "list", "--model", MODEL, "--limit", "500", "--json"))
        return {row["gateway_id"] for row in rows} >= set(GATEWAYS)

    _eventually(predicted, "both gateways' predictions in PostgreSQL", deployment)
    assert not list(deployment.folder.rglob("iotsphere.db*")), "a SQLite file where PostgreSQL was configured"

    trained = _operator(deployment, "cloud", "train", "--history", "/data/cold-start/history.npz", "--model", MODEL)
    artifact = trained.strip().splitlines()[-1]
    assert artifact.endswith(f"/artifacts/{MODEL}/2"), trained
    _operator(deployment, "cloud", "release", artifact)
    _operator(deployment, "models", "promote", MODEL, "2", "--reason", "the compose deployment's second version")
    _eventually(lambda: _committed(deployment, "2"), "the promotion committed on both gateways", deployment)
    print(
        f"first model committed {committed - started:.0f} s after the last service started, the promotion "
        f"{time.monotonic() - committed:.0f} s after that (train, release, promote, activate)"
    )

    for name in ("ingest-1", "ingest-2"):  # the shared subscription gave each worker its part
        metrics = parse(httpx.get(f"http://127.0.0.1:{deployment.ports[name]}/metrics", timeout=10).text)
        stored = sum(value for (metric, _), value in metrics.items() if metric == "iotsphere_ingest_messages_total")
        assert stored > 0, f"{name} stored no message"
    exited = {name: code for name, process in deployment.processes.items() if (code := process.poll()) is not None}
    assert exited == {"init": 0}, f"only the one-shot init may have exited: {exited}"
