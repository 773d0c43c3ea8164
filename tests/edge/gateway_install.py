"""A gateway's installation: ``pip install '<project>[edge]'`` into a fresh venv, as a gateway installs the agent.

Used by ``tests/edge/test_edge_install.py`` (what the edge extra brings and runs) and by ``bench edge`` (the
gateway's memory, measured on the libraries a gateway has, not on the developers' venv with every extra and an
editable install).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: what pip needs to build the project: the packages pyproject.toml lists, and the files it reads
_SOURCES = ("shared", "edge_agent", "cloud", "firmware_sim", "iotsphere")
_FILES = ("pyproject.toml", "README.md")


def install_gateway(folder: Path, timeout: float = 780) -> Path:
    """A fresh venv in ``folder / "venv"`` with the project's ``[edge]`` extra installed (not editable); its python.

    Raises ``RuntimeError`` with pip's last output when the install fails (a missing wheel, no package index)."""
    source = folder / "source"  # a copy: building a wheel writes build/ and egg-info beside the sources
    for name in _SOURCES:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in _FILES:
        shutil.copy(ROOT / name, source / name)
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"{source}[edge]"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if pip.returncode != 0:
        raise RuntimeError(f"pip install '{source}[edge]' failed:\n{pip.stderr[-3000:]}")
    return python
