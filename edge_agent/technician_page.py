"""The technician's page on the gateway: pair a phone, see the site's heaters, log outcomes, see what is to send.

Served beside ``POST /outcomes`` by the local API and imported only when that is served. Everything it shows
comes from the gateway itself (the device index, the outbox, the running agent's windows and models), so it works
with the cloud out of reach. A phone pairs with a one-time code (``edge_agent.pairing``) and then holds a session
cookie (HttpOnly, SameSite=Strict); every form posts the session's CSRF token. The outcome form carries an id made
when the page was rendered, so a double submit (or a resubmit after a lost answer) stores one outcome.
"""

from __future__ import annotations

import hmac
import re
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Protocol
from urllib.parse import parse_qs, quote, unquote, urlsplit

from pydantic import ValidationError

from edge_agent import technician_html as html
from edge_agent.pairing import SESSION_MAX_S, Pairing, Session
from edge_agent.technician import OutcomeRefused, OutcomeRequest, TechnicianLog, UnknownDevice, validation_detail
from edge_agent.windows import ReadingsSummary
from shared.messages import ModelState, PredictionType
from shared.topics import Up

COOKIE = "iotsphere_technician"
_HEATER = re.compile(r"^/heaters/([^/]+)(/outcomes)?$")
#: form fields the outcome form posts
_OUTCOME_FIELDS = ("component", "result", "notes", "technician", "outcome_id")


class Site(Protocol):
    """What the running agent tells the page beyond its files."""

    @property
    def online(self) -> bool: ...

    def model_states(self) -> list[ModelState]: ...

    def readings_summary(self, device_id: str) -> ReadingsSummary | None: ...


@dataclass
class Reply:
    status: HTTPStatus
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    cookie: str | None
    form: dict[str, str]


def parse_form(body: bytes) -> dict[str, str]:
    """An urlencoded form's fields, the first value of each."""
    return {name: values[0] for name, values in parse_qs(body.decode("utf-8", "replace")).items()}


def cookie_value(header: str | None) -> str | None:
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


class TechnicianPages:
    def __init__(self, technician: TechnicianLog, pairing: Pairing, site: Site):
        self.technician = technician
        self.pairing = pairing
        self.site = site

    @property
    def gateway_id(self) -> str:
        identity = self.technician.devices.identity()
        return identity.gateway_id if identity else "?"

    def handle(self, request: Request) -> Reply:
        path = urlsplit(request.path).path
        if request.method == "GET" and path == "/page.css":
            return Reply(HTTPStatus.OK, html.CSS.encode(), [("Content-Type", "text/css; charset=utf-8")])
        if request.method == "POST" and path == "/pair":
            return self._pair(request.form.get("code", ""))
        session = self.pairing.session(request.cookie)
        if session is None:
            if request.method == "GET" and path == "/":
                return self._page(HTTPStatus.OK, "Pair", html.pair_form())
            if request.method == "GET":
                return Reply(HTTPStatus.SEE_OTHER, headers=[("Location", "/")])
            return self._message(HTTPStatus.FORBIDDEN, "Not paired", "Pair this phone with the gateway first.")
        if request.method == "POST" and not hmac.compare_digest(
            request.form.get("csrf", "").encode(), session.csrf.encode()
        ):
            return self._message(HTTPStatus.FORBIDDEN, "Refused", "The form is stale: reload the page and try again.")
        heater = _HEATER.match(path)
        match request.method, path:
            case "GET", "/":
                return self._heaters(session)
            case "GET", "/outbox":
                return self._outbox(session)
            case "POST", "/signout":
                self.pairing.end(request.cookie or "")
                return Reply(HTTPStatus.SEE_OTHER, headers=[("Location", "/"), ("Set-Cookie", _cookie("", 0))])
            case "GET", _ if heater and not heater.group(2):
                return self._heater(session, unquote(heater.group(1)), request.path)
            case "POST", _ if heater and heater.group(2):
                return self._record(session, unquote(heater.group(1)), request.form)
        return self._message(HTTPStatus.NOT_FOUND, "Not found", f"Nothing at {path}.", session)

    # -- pages -----------------------------------------------------------------------------------------

    def _pair(self, code: str) -> Reply:
        opened = self.pairing.redeem(code) if 0 < len(code) <= 16 else None
        if opened is None:
            error = "That code is wrong, used or expired. Codes burn after a few wrong tries: ask for a new one."
            return self._page(HTTPStatus.FORBIDDEN, "Pair", html.pair_form(error))
        token, _ = opened
        return Reply(HTTPStatus.SEE_OTHER, headers=[("Location", "/"), ("Set-Cookie", _cookie(token, SESSION_MAX_S))])

    def _heaters(self, session: Session) -> Reply:
        devices = self.technician.devices
        heaters = devices.heaters()
        latest = devices.latest_by_model([device_id for device_id, _ in heaters])
        body = html.heaters_page(heaters, latest, self.site.model_states(), self.site.online, len(self._queued()))
        return self._page(HTTPStatus.OK, "Heaters", body, session)

    def _heater(
        self,
        session: Session,
        device_id: str,
        url: str,
        values: dict[str, str] | None = None,
        error: str | None = None,
        status: HTTPStatus = HTTPStatus.OK,
    ) -> Reply:
        devices = self.technician.devices
        kinds = dict(devices.heaters())
        if device_id not in kinds:
            unknown = f"The gateway has never heard from {device_id}."
            return self._message(HTTPStatus.NOT_FOUND, "Unknown heater", unknown, session)
        predictions = devices.latest_by_model([device_id]).get(device_id, [])
        suggested = next(
            (
                max((c for c in p.outputs if c != "none"), key=p.outputs.__getitem__, default=None)
                for p in predictions
                if p.prediction_type == PredictionType.COMPONENT_FAILURE.value
            ),
            None,
        )
        values = values or {}
        outcome_id = values.get("outcome_id") or uuid.uuid4().hex
        form = html.outcome_form(device_id, session.csrf, outcome_id, suggested, values, error)
        mine = [o for o in devices.site_outcomes() if o.device_id == device_id]
        history = html.outcomes_table(mine, self._queued(), with_device=False)
        logged = parse_qs(urlsplit(url).query).get("logged", [None])[0]
        body = html.heater_page(
            device_id, kinds[device_id], predictions, self.site.readings_summary(device_id), form, logged, history
        )
        return self._page(status, device_id, body, session)

    def _record(self, session: Session, device_id: str, form: dict[str, str]) -> Reply:
        values = {name: form[name] for name in _OUTCOME_FIELDS if form.get(name, "").strip()}
        try:
            outcome = self.technician.record(OutcomeRequest(device=device_id, **values))
        except ValidationError as exc:
            error = validation_detail(exc)
        except (UnknownDevice, OutcomeRefused) as exc:
            error = str(exc)
        else:
            location = f"/heaters/{quote(device_id)}?logged={quote(outcome.outcome_id)}"
            return Reply(HTTPStatus.SEE_OTHER, headers=[("Location", location)])
        return self._heater(session, device_id, "", form, error, HTTPStatus.BAD_REQUEST)

    def _outbox(self, session: Session) -> Reply:
        outcomes = html.outcomes_table(self.technician.devices.site_outcomes(), self._queued(), with_device=True)
        body = html.outbox_page(outcomes, self.technician.outbox.depth_by_channel())
        return self._page(HTTPStatus.OK, "To send", body, session)

    # -- helpers ---------------------------------------------------------------------------------------

    def _queued(self) -> set[str]:
        return self.technician.outbox.queued_msg_ids(Up.OUTCOMES.value)

    def _message(self, status: HTTPStatus, title: str, text: str, session: Session | None = None) -> Reply:
        return self._page(status, title, html.message_page(title, text), session)

    def _page(self, status: HTTPStatus, title: str, body: str, session: Session | None = None) -> Reply:
        page = html.layout(title, body, self.gateway_id, session.csrf if session else None)
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Security-Policy", html.CSP),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ]
        return Reply(status, page.encode(), headers)


def _cookie(token: str, max_age: float) -> str:
    """The session cookie: no script reads it, no other site sends it; plain HTTP on the site network has no TLS."""
    return f"{COOKIE}={token}; Path=/; Max-Age={int(max_age)}; HttpOnly; SameSite=Strict"
