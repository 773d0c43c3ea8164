"""The agent's version, as installed (reported in ``up/status`` and the HTTP User-Agent)."""

from importlib.metadata import PackageNotFoundError, version

try:
    AGENT_VERSION = version("iotsphere-mlops")
except PackageNotFoundError:  # running from a source tree that was never installed
    AGENT_VERSION = "0+unknown"
