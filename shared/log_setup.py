"""The one place logging is set up: plain lines for people, or one JSON object per line for log collectors.

``IOTSPHERE_LOG_FORMAT=json`` makes every line a JSON object with ``time``, ``level``, ``role`` (what the process
is: ``api``, ``ingest``, ``cli``…), ``thread``, ``logger``, ``message`` and ``request_id`` (the HTTP request the
line was written for, when there is one), plus what a call passes as ``extra`` (``gateway_id``, ``model``). Nothing
here reads a secret: the lines carry what the code logs, and the code logs ids, never keys, passphrases or notes.

The request id lives in a context variable: the API sets it per request (``cloud.observability.http``), and
Starlette's thread pool copies the context, so a service called from a route logs — and audits — under its id.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

#: the X-Request-ID of the HTTP request being served in this context; None outside a request
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

_role = "cli"
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: the record attributes a JSON line starts with, renamed to what log collectors expect
_JSON_FIELDS = {"asctime": "time", "levelname": "level", "name": "logger", "threadName": "thread"}


def set_role(role: str) -> None:
    """Name what this process is in every line from now on (``cloud serve``: ``api``, ``cloud ingest``: ``ingest``)."""
    global _role
    _role = role


class _Context(logging.Filter):
    """Stamp each record with the process role and the request it belongs to."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.role = _role
        record.request_id = request_id.get()
        return True


class _ChosenOnFirstLine(logging.Formatter):
    """Text or JSON as ``IOTSPHERE_LOG_FORMAT`` says, read at the first line logged rather than at start-up: reading
    the settings costs a tenth of a second that ``--help``, which logs nothing, must not pay. ``json_logs`` given
    decides without the settings (the gateway's serving process: its command read them)."""

    def __init__(self, json_logs: bool | None) -> None:
        super().__init__()
        self._json_logs = json_logs
        self._chosen: logging.Formatter | None = None

    def format(self, record: logging.LogRecord) -> str:
        if self._chosen is None:
            json_logs = _wants_json() if self._json_logs is None else self._json_logs
            self._chosen = _json_formatter() if json_logs else logging.Formatter(_TEXT_FORMAT)
        return self._chosen.format(record)


def _wants_json() -> bool:
    from shared.settings import SettingsError, settings

    try:
        return settings().log_format == "json"
    except SettingsError:  # the command itself names the bad variable when it reads the settings
        return False


def _json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter  # only when asked for: text logging imports nothing more

    return JsonFormatter(
        "{asctime}{levelname}{role}{threadName}{name}{message}{request_id}",
        style="{",
        rename_fields=_JSON_FIELDS,
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


def configure_logging(verbose: bool = False, json_logs: bool | None = None) -> None:
    """Log to stderr, DEBUG with ``verbose`` else INFO, in JSON when ``json_logs`` (None: as ``IOTSPHERE_LOG_FORMAT``
    names)."""
    handler = logging.StreamHandler()
    handler.addFilter(_Context())
    handler.setFormatter(_ChosenOnFirstLine(json_logs))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
