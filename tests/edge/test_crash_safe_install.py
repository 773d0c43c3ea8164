"""An agent SIGKILLed at each step of an install restarts serving a verified release, and the install resumes.

A child process builds the real ``EdgeAgent`` over its data folder and applies a director document
against a real TUF repository served over HTTP by the cloud API, with ``AgentConfig.fault_point`` (what
``iotsphere edge run`` reads from ``IOTSPHERE_FAULT_POINT``) arming one step (``edge_agent.fault_points``): the
child kills itself there. Downloads happen in the agent's own
update child (``edge_agent.update_fetch``), so a kill at ``download`` kills that one: the agent reports the
document deferred and lives on. The test then restarts the agent
on the same folder without the fault and checks what a power cut must never break: the agent serves
the old release or the new one (loaded with every check), every installed version's files are exactly
the bytes TUF describes, the active pointer names one of them, no crash leftovers remain — and the
redelivered document (the retained copy comes back on every reconnect) completes the update.

Each step is killed in a first install (nothing → 1) and in an upgrade (1 → 2), at different hits
where a step is reached more than once. One cloud serves the module; each case has its own folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloud.releases import tuf_repo
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig
from edge_agent.fault_points import ENV_VAR, parse
from edge_agent.model_store import MODEL_FILE, RELEASE_FILE, ModelStore
from edge_agent.updater import UpdateResult
from tests.edge.releases import build_serving_release
from tests.edge.tuf_world import GATEWAY, Cloud, running_cloud

MODEL = "component_failure"
PROJECT = Path(__file__).parents[2]

_AGENT = """
import sys
from pathlib import Path
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig

folder, cloud_url, api_key, root, gateway, document, fault = sys.argv[1:]
agent = EdgeAgent(
    AgentConfig(gateway, Path(folder), cloud_url=cloud_url, api_key=api_key, trusted_root=Path(root), fault_point=fault)
)
agent.store.load_active()
print(agent.updater.handle(Path(document).read_bytes()).value, flush=True)
"""


@dataclass(frozen=True)
class Install:
    """A director document taking the gateway from ``old`` (None: nothing installed) to ``new``."""

    old: str | None
    new: str
    sequence: int


FIRST = Install(None, "1", 1)
UPGRADE = Install("1", "2", 2)

#: (fault, install). Hits per step: download — director keys (first install only), release file,
#: model; write and fsync — model file, release file (fsync: then the folder); rename — before and
#: after the version folder takes its name; activate — before the pointer is replaced, then before
#: the director sequence is recorded.
CASES = [
    ("download:2", FIRST),
    ("download:3", FIRST),
    ("download:1", UPGRADE),
    ("download:2", UPGRADE),
    ("verify", FIRST),
    ("verify", UPGRADE),
    ("write:1", FIRST),
    ("write:2", UPGRADE),
    ("fsync:2", FIRST),
    ("fsync:1", UPGRADE),
    ("fsync:3", UPGRADE),
    ("rename:1", FIRST),
    ("rename:2", UPGRADE),
    ("activate:1", FIRST),
    ("activate:2", FIRST),
    ("activate:1", UPGRADE),
    ("activate:2", UPGRADE),
]


@dataclass(frozen=True)
class World:
    cloud: Cloud
    trusted_root: Path
    documents: dict[int, Path]
    #: a gateway folder where version 1 is installed and active, copied for each upgrade
    at_version_1: Path

    def config(self, folder: Path) -> AgentConfig:
        return AgentConfig(
            GATEWAY,
            folder,
            cloud_url=self.cloud.url,
            api_key=self.cloud.gateway_token,
            trusted_root=self.trusted_root,
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("crash-safe")
    with running_cloud(folder / "cloud") as cloud:
        cloud.publish(build_serving_release("1"))
        cloud.publish(build_serving_release("2", seed=1))
        trusted_root = folder / "root.json"
        trusted_root.write_bytes(tuf_repo.trusted_root_bytes(cloud.config))
        documents = {}
        for install in (FIRST, UPGRADE):
            documents[install.sequence] = folder / f"director-{install.sequence}.json"
            document = cloud.document(install.sequence, {MODEL: cloud.desired(MODEL, install.new)})
            documents[install.sequence].write_bytes(document)
        running = World(cloud, trusted_root, documents, folder / "at-version-1")
        agent = EdgeAgent(running.config(running.at_version_1))
        assert agent.updater.handle(documents[FIRST.sequence].read_bytes()) is UpdateResult.APPLIED
        agent.stop()
        yield running


def _killed_at(world: World, folder: Path, fault: str, install: Install) -> subprocess.CompletedProcess:
    config = world.config(folder)
    arguments = [config.cloud_url, config.api_key, str(config.trusted_root), GATEWAY]
    return subprocess.run(
        [sys.executable, "-c", _AGENT, str(folder), *arguments, str(world.documents[install.sequence]), fault],
        cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        capture_output=True,
        timeout=120,
        check=False,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_only_verified_releases(store: ModelStore, cloud: Cloud) -> None:
    """Every installed version is byte for byte what TUF describes, and the pointer names one of them."""
    installed = store.installed_versions(MODEL)
    for version in installed:
        desired = cloud.desired(MODEL, version)
        folder = store.root / MODEL / "versions" / version
        assert _sha256(folder / MODEL_FILE) == desired.model_sha256
        assert _sha256(folder / RELEASE_FILE) == desired.release_sha256
    pointer = store.pointer(MODEL)
    assert pointer is None or pointer.version in installed
    assert not list((store.root / MODEL / "versions").glob(".*"))  # staging leftovers cleared at start


@pytest.mark.parametrize(
    ("fault", "install"), CASES, ids=[f"{f}-{'first' if i is FIRST else 'upgrade'}" for f, i in CASES]
)
def test_a_kill_at_any_install_step_leaves_a_verified_release_and_the_update_resumes(
    tmp_path: Path, world: World, fault: str, install: Install
):
    folder = tmp_path / "gateway"
    if install.old is not None:
        shutil.copytree(world.at_version_1, folder)

    crashed = _killed_at(world, folder, fault, install)
    if parse(fault)[0] == "download":  # the update child's step: the child dies, the agent defers the document
        assert (crashed.returncode, crashed.stdout.strip()) == (0, b"deferred"), crashed.stderr[-500:]
        assert not (folder / "tuf" / "staged").exists()
    else:
        assert crashed.returncode == -signal.SIGKILL, (
            f"{fault} never fired: {crashed.stdout!r} {crashed.stderr[-500:]!r}"
        )

    agent = EdgeAgent(world.config(folder))  # the restart, without the fault
    try:
        active = agent.store.load_active()  # every check again: only a complete, verified release loads
        assert (active[MODEL].version if MODEL in active else None) in {install.old, install.new}
        _assert_only_verified_releases(agent.store, world.cloud)
        assert not list((folder / "tuf" / "downloads").iterdir())

        document = world.documents[install.sequence].read_bytes()
        assert agent.updater.handle(document) is UpdateResult.APPLIED  # the redelivered document resumes it
        assert agent.store.active()[MODEL].version == install.new
        assert agent.store.pointer(MODEL).version == install.new
        assert agent.updater.accepted_sequence == install.sequence
        _assert_only_verified_releases(agent.store, world.cloud)
    finally:
        agent.stop()


def test_an_armed_fault_point_is_parsed_or_refused_clearly():
    assert parse("write") == ("write", 1) and parse("fsync:3") == ("fsync", 3)
    for bad in ("unplug", "write:0", "write:x"):
        with pytest.raises(ValueError, match=ENV_VAR):
            parse(bad)
