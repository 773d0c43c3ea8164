"""A gateway installs only what it runs: ``pip install 'iotsphere-mlops[edge]'`` brings no scikit-learn, scipy,
FastAPI, skl2onnx or simulator, and the agent works with that alone.

The static tests read the source and pyproject.toml (fast); ``test_an_edge_only_install_runs_the_agent`` really
installs the project into a fresh venv from the package index (about a minute; ``-m 'not install'`` skips it).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.edge.gateway_install import install_gateway
from tests.edge.releases import build_serving_release

ROOT = Path(__file__).resolve().parents[2]
OURS = {"shared", "edge_agent", "cloud", "firmware_sim", "iotsphere", "tests", "bench"}
#: what a gateway must never be made to install
NOT_ON_A_GATEWAY = ["scikit-learn", "scipy", "fastapi", "skl2onnx", "numba", "sqlite-utils", "uvicorn", "amqtt"]


def _imports(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports, at the top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _gateway_sources() -> list[Path]:
    """What an edge install runs: the agent, the shared code and the entry point."""
    return [*(ROOT / "edge_agent").rglob("*.py"), *(ROOT / "shared").rglob("*.py"), ROOT / "iotsphere" / "cli.py"]


def _requirement_closure(requirements: list[str]) -> set[str]:
    """Distributions ``requirements`` install, with what they depend on (read from this venv, where all are)."""
    seen: set[str] = set()
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        name = metadata.distribution(requirement.name).metadata["Name"].lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(name) or []:
            dependency = Requirement(text)
            if dependency.marker is None or dependency.marker.evaluate({"extra": ""}):
                pending.append(dependency)
    return seen


def test_nothing_under_edge_agent_imports_the_cloud_or_the_simulator():
    offenders = {
        str(path.relative_to(ROOT)): sorted(found)
        for path in (ROOT / "edge_agent").rglob("*.py")
        if (found := _imports(path) & {"cloud", "firmware_sim", "iotsphere", "tests", "bench"})
    }
    assert offenders == {}


def test_every_library_the_gateway_imports_comes_with_the_edge_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed = _requirement_closure(project["dependencies"] + project["optional-dependencies"]["edge"])
    third_party = set().union(*map(_imports, _gateway_sources())) - OURS - set(sys.stdlib_module_names)
    providers = metadata.packages_distributions()
    missing = {
        module: providers.get(module)
        for module in third_party
        if not {d.lower().replace("_", "-") for d in providers.get(module, [])} & installed
    }
    assert missing == {}, "imported by the gateway but not installed by iotsphere-mlops[edge]"
    assert not set(NOT_ON_A_GATEWAY) & installed


@pytest.mark.install
@pytest.mark.timeout(900)
def test_an_edge_only_install_runs_the_agent(tmp_path: Path):
    python = install_gateway(tmp_path)
    venv, iotsphere = python.parent.parent, python.parent / "iotsphere"

    def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        # outside the repository, so everything comes from the venv and nothing from the source tree
        return subprocess.run(args, input=stdin, capture_output=True, cwd=tmp_path, timeout=120, check=False)

    present = run(
        str(python),
        "-c",
        f"import importlib.metadata as m, json\nprint(json.dumps([n for n in {NOT_ON_A_GATEWAY!r} "
        "if any(d.metadata['Name'].lower() == n for d in m.distributions())]))",
    )
    assert json.loads(present.stdout) == []
    helped = run(str(iotsphere), "edge", "--help")
    assert helped.returncode == 0 and b"Usage: iotsphere edge" in helped.stdout, helped.stderr
    every_module = (
        "import importlib, pkgutil, edge_agent\n"
        "for m in pkgutil.iter_modules(edge_agent.__path__): importlib.import_module('edge_agent.' + m.name)\n"
        "print(edge_agent.__file__)"
    )
    imported = run(str(python), "-c", every_module)
    assert imported.returncode == 0 and str(venv).encode() in imported.stdout, imported.stderr
    # the capped child's checks run with what the edge extra installed (onnx included), on a real release
    built = build_serving_release()
    header = {"memory_bytes": 1 << 30, "max_bytes": 1 << 26, "max_opset": {"ai.onnx": 21, "ai.onnx.ml": 5}}
    header |= {"features": None, "release_length": len(built.release_bytes)}
    stdin = json.dumps(header).encode() + b"\n" + built.release_bytes + built.onnx_bytes
    verdict = run(str(python), "-m", "edge_agent.sandboxed_load", stdin=stdin)
    assert json.loads(verdict.stdout.splitlines()[-1]) == {"ok": True}, verdict.stderr
    refused = run(str(iotsphere), "cloud", "train", "--help")
    assert refused.returncode == 1 and b"pip install 'iotsphere-mlops[cloud]'" in refused.stderr
