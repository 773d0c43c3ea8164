"""The cloud's one error hierarchy: what went wrong, in four kinds every caller answers the same way.

Services raise these (or their own subclasses of them) and know nothing of HTTP or exit codes; the API answers each
kind with one status (``cloud.api.errors``) and the CLI with one message and exit code (``cloud.cli_errors``). A
message is written for the person who called: ``str(exc)`` is shown as it is.

A domain class names its kind and keeps the builtin base it had, e.g. ``class UnknownModel(NotFound, LookupError)``,
so code that catches ``LookupError`` or ``ValueError`` today still does. ``Invalid`` is itself a ``ValueError`` (a
value the caller gave does not fit): a service raises it for bad arguments, and a bare ``ValueError`` is left for
the server's own bugs.
"""

from __future__ import annotations


class IoTSphereError(Exception):
    """Something the caller asked for cannot be done; the message says why."""


class NotFound(IoTSphereError):
    """What the request names does not exist (a model, version, run, device, experiment…)."""


class Refused(IoTSphereError):
    """The request is understood but a rule forbids it in the current state; nothing was changed."""


class Invalid(IoTSphereError, ValueError):
    """The request's values make no sense together (start after end, an unknown feature name, a bad cron)."""


class Unavailable(IoTSphereError):
    """The cloud cannot do it now: it lacks something it needs (a passphrase, a key) or a dependency failed."""

    #: seconds after which trying again may succeed; None when waiting will not help (something must be set up)
    retry_after_s: int | None = None


class TemporarilyUnavailable(Unavailable):
    """A failure that may pass by itself (the database locked or full, the transaction lost): try again."""

    retry_after_s = 30
