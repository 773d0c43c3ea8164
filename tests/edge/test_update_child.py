"""Updates are checked in a short-lived child (``edge_agent.update_fetch``): the agent process that applies them
never imports ``cryptography``, tuf or urllib3, still refuses a tampered release and keeps serving its model."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.releases import tuf_repo
from edge_agent.model_loader import FeatureContract
from edge_agent.update_fetch import StagedFiles
from shared.director import DirectorRejected, RejectRule
from shared.features import FEATURE_NAMES, FEATURE_SET_VERSION
from shared.signing import generate_private_key
from tests.edge.releases import build_serving_release
from tests.edge.tuf_world import GATEWAY, Cloud, make_gateway, running_cloud

MODEL = "component_failure"
ROOT = Path(__file__).resolve().parents[2]

#: an agent over its folder applies each document given, printing the result and the model it then serves;
#: last, the libraries it imported
_AGENT = """
import sys
from pathlib import Path
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig

folder, cloud_url, api_key, root, gateway, *documents = sys.argv[1:]
config = AgentConfig(gateway, Path(folder), cloud_url=cloud_url, api_key=api_key, trusted_root=Path(root))
agent = EdgeAgent(config)
agent.store.load_active()
for document in documents:
    result = agent.updater.handle(Path(document).read_bytes())
    print(result.value, agent.store.active()["component_failure"].version if agent.store.active() else None, flush=True)
agent.stop()
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    with running_cloud(tmp_path / "cloud") as running:
        running.publish(build_serving_release("1"))
        running.publish(build_serving_release("2", seed=1))
        yield running


def _agent_applies(tmp_path: Path, cloud: Cloud, documents: list[bytes]) -> tuple[list[list[str]], set[str]]:
    root = tmp_path / "root.json"
    root.write_bytes(tuf_repo.trusted_root_bytes(cloud.config))
    paths = []
    for index, document in enumerate(documents):
        paths.append(tmp_path / f"document-{index}.json")
        paths[-1].write_bytes(document)
    arguments = [str(tmp_path / "gw"), cloud.url, cloud.gateway_token, str(root), GATEWAY, *map(str, paths)]
    done = subprocess.run(
        [sys.executable, "-c", _AGENT, *arguments], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    *results, modules = done.stdout.strip().splitlines()
    return [line.split() for line in results], set(modules.split())


def test_an_agent_applying_updates_never_imports_cryptography_or_tuf(tmp_path: Path, cloud: Cloud):
    forged = cloud.document(3, {MODEL: cloud.desired(MODEL, "1")}, key=generate_private_key())
    documents = [
        cloud.document(1, {MODEL: cloud.desired(MODEL, "1")}),
        forged,
        cloud.document(2, {MODEL: cloud.desired(MODEL, "2")}),
    ]
    results, modules = _agent_applies(tmp_path, cloud, documents)
    assert results == [["applied", "1"], ["rejected", "1"], ["applied", "2"]]
    assert "onnxruntime" in modules
    assert not {"cryptography", "tuf", "urllib3", "onnx"} & modules, sorted(modules)


def test_a_tampered_release_is_refused_and_the_agent_keeps_its_model(tmp_path: Path, cloud: Cloud):
    target = cloud.config.tuf_dir / "targets" / "models" / MODEL / "2"
    (stored,) = target.glob("*.model.onnx")
    stored.write_bytes(bytes(reversed(stored.read_bytes())))  # same length, other bytes: TUF's hash refuses it
    documents = [
        cloud.document(1, {MODEL: cloud.desired(MODEL, "1")}),
        cloud.document(2, {MODEL: cloud.desired(MODEL, "2")}),
    ]
    results, _ = _agent_applies(tmp_path, cloud, documents)
    assert results == [["applied", "1"], ["deferred", "1"]]  # tuf.download: transient, tried again later
    assert not (tmp_path / "gw" / "tuf" / "staged").exists()
    assert (tmp_path / "gw" / "models" / MODEL / "versions").exists()
    assert [p.name for p in (tmp_path / "gw" / "models" / MODEL / "versions").iterdir()] == ["1"]


def test_staged_files_changed_after_the_child_verified_them_are_refused(tmp_path: Path, cloud: Cloud):
    """The agent checks the staged bytes against the document itself: the child's verdict alone loads nothing."""
    gateway = make_gateway(tmp_path / "gw", cloud)
    gateway.updater.features = FeatureContract(FEATURE_SET_VERSION, tuple(FEATURE_NAMES))  # the serving releases'
    desired = cloud.desired(MODEL, "2")
    built = build_serving_release("2", seed=1)  # as the cloud published it
    release_bytes, onnx_bytes = built.release_bytes, built.onnx_bytes
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "release.json").write_bytes(release_bytes)
    (staged / "model.onnx").write_bytes(bytes(reversed(onnx_bytes)))  # swapped after the child checked it
    files = StagedFiles(staged / "release.json", staged / "model.onnx")
    with pytest.raises(DirectorRejected) as refused:
        gateway.updater._load_staged(files, MODEL, desired)
    assert refused.value.rule is RejectRule.DOWNLOAD and "changed on disk" in refused.value.detail
    (staged / "model.onnx").write_bytes(onnx_bytes)  # the bytes TUF verified load
    assert gateway.updater._load_staged(files, MODEL, desired).loaded.version == "2"
