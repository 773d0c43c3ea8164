"""The gateway's long-running process, which ``iotsphere edge run`` becomes once its configuration is settled.

The command parses its options and reads the settings (click, pydantic-settings and the asyncio it imports: ~3.4 MB
a process would keep for as long as it serves), checks the configuration (``edge_agent.config``: neither the agent
nor numpy nor onnxruntime, so they load once, here), then replaces itself (``exec``: the same process id, so service
managers and signals see no difference) with ``python -m edge_agent.serve``, which receives the ``AgentConfig``
through an inherited pipe and imports only the agent. The serving process also starts with glibc's malloc arenas
capped (``MALLOC_ARENA_MAX=2`` unless the environment already sets it), which glibc reads only when a process starts:
uncapped, the agent's threads (MQTT network, worker, sender) each grow an arena of their own, about 2 MB more at the
same load (docs/edge.md).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from dataclasses import dataclass
from typing import NoReturn

from edge_agent.config import AgentConfig
from shared.log_setup import configure_logging

#: what a pipe takes without a reader (Linux: 64 KiB); a configuration pickles to well under 1 KiB
_PIPE_BYTES = 65536
#: glibc's arena cap for the serving process, unless the environment names one
_MALLOC_ARENAS = "2"


@dataclass(frozen=True)
class Handover:
    """What the command settled: the agent's configuration and how to log."""

    config: AgentConfig
    verbose: bool
    json_logs: bool


def hand_over(handover: Handover) -> NoReturn:
    """Replace this process with the serving one, handing it ``handover`` through an inherited pipe.

    The pipe is written whole before the ``exec`` and read by the new program image of this same process: only it
    holds the read end, so pickle carries nothing but what this process put there."""
    payload = pickle.dumps(handover)
    if len(payload) > _PIPE_BYTES:
        raise ValueError(f"the agent's configuration pickles to {len(payload)} bytes, more than a pipe holds")
    read_end, write_end = os.pipe()
    os.write(write_end, payload)
    os.close(write_end)
    os.set_inheritable(read_end, True)
    sys.stdout.flush()
    sys.stderr.flush()
    environment = {"MALLOC_ARENA_MAX": _MALLOC_ARENAS, **os.environ}
    os.execve(sys.executable, [sys.executable, "-m", __name__, str(read_end)], environment)


def serve(config: AgentConfig) -> int:
    """Run the agent until SIGINT or SIGTERM; 2 when it cannot start (a usage problem the command could not see)."""
    from edge_agent.agent import EdgeAgent  # not for the command, which imports this module to hand over
    from edge_agent.pairing import DEFAULT_CODE_MINUTES, code_terms

    try:
        agent = EdgeAgent(config)
    except (ValueError, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    agent.start()
    _say(f"edge agent {config.gateway_id} running (data in {config.data_dir}); Ctrl-C to stop")
    if agent.local_api is not None:
        url = f"http://{config.local_api_host}:{agent.local_api.port}/"
        code = agent.local_api.pages.pairing.issue()
        _say(f"technician page on {url} (POST {url}outcomes for apps with the token)")
        _say(f"pairing code {code}: {code_terms(DEFAULT_CODE_MINUTES)}")
    stopping.wait()
    remaining = agent.stop()
    _say(f"edge agent {config.gateway_id} stopped; {remaining} message(s) kept in the outbox for the next start")
    return 0


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("edge_agent.serve is started by `iotsphere edge run`, which hands it its configuration", file=sys.stderr)
        return 2
    with os.fdopen(int(argv[0]), "rb") as pipe:
        handover: Handover = pickle.load(pipe)
    configure_logging(handover.verbose, json_logs=handover.json_logs)
    return serve(handover.config)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
