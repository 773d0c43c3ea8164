"""A new release's first load and smoke run happen in a child process with a memory cap and a deadline.

The hardened loader's static checks (size and opset caps, domain and operator allow-lists, no
external data) are the first line and refuse what they can see. What they cannot see — a graph of
allowed operators that still asks for gigabytes once it runs, or never finishes — must not grow
or stall the agent, which keeps serving meanwhile. So the whole ``load_model`` (static checks,
onnxruntime session, schema, golden vectors) first runs in a fresh interpreter whose address
space may grow by at most ``LoaderLimits.child_memory_bytes`` (RLIMIT_AS) and which is killed after
``LoaderLimits.child_timeout`` seconds; only a release that passed there is loaded by the agent
(``load_checked``), which then needs no ``onnx`` of its own: the child's static checks already parsed
exactly these bytes. Every model the agent serves goes this way, at install, at start and on rollback.

The child is ``python -m edge_agent.sandboxed_load`` started with subprocess (never fork: the agent
has threads). It reads one JSON header line, the release file and the ONNX bytes from stdin, and
writes its verdict as one JSON line to stdout. Its refusals keep their own rule; running out of
memory or time is ``onnx.resources``.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

from edge_agent.model_loader import FeatureContract, LoadedModel, LoaderLimits, load_model, open_model
from shared.director import DirectorRejected, RejectRule
from shared.release import ReleaseFile

#: what onnxruntime says when an allocation fails (it raises, with one of these in the message)
_ALLOCATION_FAILURES = ("bad_alloc", "Failed to allocate memory", "MemoryError")


def check_in_child(
    onnx_bytes: bytes, release_bytes: bytes, features: FeatureContract | None, limits: LoaderLimits
) -> None:
    """Run ``load_model`` in a capped child; return if it passed, else raise ``DirectorRejected``."""
    header = {
        "memory_bytes": limits.child_memory_bytes,
        "max_bytes": limits.max_bytes,
        "max_opset": dict(limits.max_opset),
        "features": None if features is None else {"version": features.version, "names": list(features.names)},
        "release_length": len(release_bytes),
    }
    budget = f"{limits.child_memory_bytes // (1024 * 1024)} MiB"
    try:
        done = subprocess.run(
            [sys.executable, "-m", __name__],
            input=json.dumps(header).encode() + b"\n" + release_bytes + onnx_bytes,
            capture_output=True,
            timeout=limits.child_timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed the child
        raise DirectorRejected(
            RejectRule.ONNX_RESOURCES,
            f"the first load and golden run did not finish within {limits.child_timeout:g} s",
        ) from exc
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        raise DirectorRejected(
            RejectRule.ONNX_RESOURCES,
            f"the model check process {_describe_exit(done.returncode)} with {budget} of memory to spare: "
            f"{_last_line(done.stderr)}",
        )
    verdict = json.loads(lines[-1])
    if not verdict["ok"]:
        raise DirectorRejected(RejectRule(verdict["rule"]), verdict["detail"])


def load_checked(
    onnx_bytes: bytes, release_bytes: bytes, features: FeatureContract | None, limits: LoaderLimits
) -> LoadedModel:
    """Every check in the capped child, then the same bytes opened in this process (``open_model``)."""
    check_in_child(onnx_bytes, release_bytes, features, limits)
    return open_model(onnx_bytes, ReleaseFile.model_validate_json(release_bytes), features)


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def _last_line(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").strip().splitlines()
    return lines[-1][:300] if lines else "no error output"


def _memory_error(exc: BaseException) -> bool:
    """True when ``exc`` or what caused it is an allocation refused under the memory cap."""
    while exc is not None:
        if isinstance(exc, MemoryError) or any(text in str(exc) for text in _ALLOCATION_FAILURES):
            return True
        exc = exc.__cause__
    return False


def _cap_address_space(extra_bytes: int) -> None:
    """Let the address space grow by ``extra_bytes`` beyond what the interpreter and loader already map."""
    pages = int(Path("/proc/self/statm").read_text().split()[0])
    limit = pages * os.sysconf("SC_PAGE_SIZE") + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _verdict(header: dict, release_bytes: bytes, onnx_bytes: bytes) -> dict:
    budget = f"{header['memory_bytes'] // (1024 * 1024)} MiB"
    features = header["features"]
    limits = LoaderLimits(max_bytes=header["max_bytes"], max_opset=header["max_opset"])
    try:
        release = ReleaseFile.model_validate_json(release_bytes)
        load_model(
            onnx_bytes, release, features and FeatureContract(features["version"], tuple(features["names"])), limits
        )
    except DirectorRejected as rejected:
        if _memory_error(rejected):
            detail = f"loading and golden run need more than {budget} of memory ({rejected.detail})"
            return {"ok": False, "rule": RejectRule.ONNX_RESOURCES.value, "detail": detail}
        return {"ok": False, "rule": rejected.rule.value, "detail": rejected.detail}
    except MemoryError:
        return {"ok": False, "rule": RejectRule.ONNX_RESOURCES.value, "detail": f"loading needs more than {budget}"}
    return {"ok": True}


def main() -> None:
    stdin = sys.stdin.buffer
    header = json.loads(stdin.readline())
    _cap_address_space(header["memory_bytes"])
    release_bytes = stdin.read(header["release_length"])
    onnx_bytes = stdin.read()
    sys.stdout.write(json.dumps(_verdict(header, release_bytes, onnx_bytes)) + "\n")


if __name__ == "__main__":
    main()
