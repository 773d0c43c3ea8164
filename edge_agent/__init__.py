"""Edge agent: one process per gateway, local inference on signed ONNX models."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("iotsphere-mlops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
