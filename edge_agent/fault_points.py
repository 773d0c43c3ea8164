"""Test-only crash points in the install path: prove that a SIGKILL at any step leaves a servable gateway.

TEST ONLY. Production never sets ``IOTSPHERE_FAULT_POINT``; then ``fault_point`` is one comparison
with ``None`` and does nothing. With ``IOTSPHERE_FAULT_POINT=<step>[:<nth>]`` set for ``iotsphere edge
run`` (which reads it with the other settings and hands it over as ``AgentConfig.fault_point``; the agent
arms it, and passes it on to its update child), the ``nth`` time (default the first) the process reaches
``step``, it SIGKILLs itself: no ``finally`` blocks, no flushing, no atexit — as close to pulling the plug
as a process can get (the page cache survives, so what is unsynced still reaches the disk; power loss is
what fsync and rename order are for). tests/edge/test_crash_safe_install.py kills an install at each step.
The agent never reads the settings itself: pydantic-settings (with asyncio) would cost a gateway ~3 MB.

The steps, in install order, and where they are reached:

- ``download``: a TUF target (director keys, release file, ONNX file) is verified into a temporary file
- ``verify``: a downloaded model is about to be loaded and checked
- ``write``: a file of a new version folder is open and empty
- ``fsync``: a file of a new version folder, then the folder itself, is about to be synced
- ``rename``: the complete version folder is about to take its final name, then has it
- ``activate``: the active pointer is about to be replaced, then the director sequence recorded
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV_VAR = "IOTSPHERE_FAULT_POINT"
STEPS = ("download", "verify", "write", "fsync", "rename", "activate")


def parse(value: str) -> tuple[str, int]:
    """``step`` or ``step:nth`` as (step, nth); a ValueError names what is wrong."""
    step, _, nth = value.partition(":")
    if step not in STEPS:
        raise ValueError(f"{ENV_VAR}={value!r}: the step must be one of {', '.join(STEPS)}")
    if nth and (not nth.isdigit() or int(nth) < 1):
        raise ValueError(f"{ENV_VAR}={value!r}: the hit count must be a positive integer")
    return step, int(nth or 1)


_hits: Counter[str] = Counter()
#: the armed (step, nth) and its text, for this process; None always, outside crash tests
_armed: tuple[str, int] | None = None
_armed_text: str | None = None


def arm(value: str | None) -> None:
    """Arm ``step[:nth]`` for this process (None disarms); a ValueError names what is wrong."""
    global _armed, _armed_text
    _armed, _armed_text = (parse(value), value) if value else (None, None)
    _hits.clear()


def armed() -> str | None:
    """The armed ``step[:nth]`` as given, for a child process that reaches steps too (the update child)."""
    return _armed_text


def fault_point(step: str) -> None:
    """Kill this process here if this step is armed and this is its nth hit."""
    if _armed is None:
        return
    _hits[step] += 1
    if (step, _hits[step]) == _armed:
        os.kill(os.getpid(), signal.SIGKILL)
