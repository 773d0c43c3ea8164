"""The technician page's HTML: small f-string templates, every value through ``html.escape``.

No template engine and no script: a gateway serves a few plain forms, and a phone in the sun needs large type,
black on white and big targets more than anything a framework adds. The one stylesheet is served by the agent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape

from edge_agent.device_index import LatestPrediction, SiteOutcome
from edge_agent.windows import ReadingsSummary
from shared.messages import Component, ModelState, OutcomeResult, PredictionType

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 18px/1.5 system-ui, sans-serif; color: #000; background: #fff; }
header, main { max-width: 40rem; margin: 0 auto; padding: 0.75rem 1rem; overflow-wrap: break-word; }
header { border-bottom: 3px solid #000; display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; align-items: center; }
header .site { font-weight: 700; margin-right: auto; }
a { color: #00307a; font-weight: 600; }
a:focus, button:focus, input:focus, select:focus, textarea:focus { outline: 3px solid #b35900; outline-offset: 2px; }
h1 { font-size: 1.5rem; margin: 0.5rem 0; }
h2 { font-size: 1.2rem; margin: 1.25rem 0 0.5rem; }
ul.cards { list-style: none; padding: 0; margin: 0; }
.cards > li { border: 2px solid #000; border-radius: 6px; padding: 0.6rem 0.8rem; margin: 0 0 0.75rem; }
.cards > li > a { font-size: 1.15rem; }
.risk { font-weight: 700; }
.muted { color: #333; font-size: 0.95rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.35rem 0.25rem; border-bottom: 1px solid #555; }
label { display: block; font-weight: 700; margin: 0.8rem 0 0.25rem; }
fieldset { border: 2px solid #000; border-radius: 6px; margin: 0.8rem 0; }
fieldset label { display: inline-flex; gap: 0.4rem; align-items: center; font-weight: 400; margin: 0.3rem 1rem 0.3rem 0;
  min-height: 48px; }
input, select, textarea { font: inherit; color: #000; background: #fff; border: 2px solid #000; border-radius: 4px;
  padding: 0.5rem; width: 100%; min-height: 48px; }
input[type=radio] { width: 1.4rem; height: 1.4rem; min-height: 0; }
input.code { font-size: 1.6rem; letter-spacing: 0.15em; text-transform: uppercase;
  font-family: ui-monospace, monospace; }
button { font: inherit; font-weight: 700; color: #fff; background: #00307a; border: 0; border-radius: 6px;
  padding: 0.75rem 1.25rem; min-height: 48px; margin-top: 1rem; cursor: pointer; }
button.plain { color: #00307a; background: #fff; border: 2px solid #00307a; margin: 0; padding: 0.3rem 0.8rem; }
.note { border: 3px solid #000; border-radius: 6px; padding: 0.6rem 0.8rem; margin: 0.75rem 0; font-weight: 600;
  overflow-wrap: anywhere; }
.note.bad { border-color: #a00000; color: #a00000; }
.state { font-weight: 700; }
"""

#: Content-Security-Policy of every page: its own stylesheet and forms, nothing else
CSP = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"


def e(value: object) -> str:
    return escape(str(value), quote=True)


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def short_when(moment: datetime) -> str:
    """For a table cell on a phone: the year is this one's."""
    return moment.strftime("%d %b %H:%M")


def label(name: str) -> str:
    return name.replace("_", " ")


def layout(title: str, body: str, gateway_id: str, csrf: str | None = None) -> str:
    """A whole page; ``csrf`` (a signed-in session) adds the navigation and the sign-out form."""
    nav = ""
    if csrf is not None:
        nav = (
            '<nav aria-label="Gateway"><a href="/">Heaters</a> · <a href="/outbox">To send</a></nav>'
            f'<form method="post" action="/signout">{csrf_field(csrf)}'
            '<button class="plain" type="submit">Sign out</button></form>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{e(title)} · {e(gateway_id)}</title><link rel="stylesheet" href="/page.css"></head>'
        f'<body><header><span class="site">Gateway {e(gateway_id)}</span>{nav}</header>'
        f"<main>{body}</main></body></html>"
    )


def csrf_field(csrf: str) -> str:
    return f'<input type="hidden" name="csrf" value="{e(csrf)}">'


def pair_form(error: str | None = None) -> str:
    problem = f'<p class="note bad" role="alert">{e(error)}</p>' if error else ""
    return (
        "<h1>Pair this phone</h1>"
        "<p>Enter the code the gateway shows (run <code>iotsphere edge pair</code> on it for a new one).</p>"
        f'{problem}<form method="post" action="/pair"><label for="code">Pairing code</label>'
        '<input class="code" id="code" name="code" autocomplete="one-time-code" autocapitalize="characters" '
        'spellcheck="false" maxlength="16" required><button type="submit">Pair</button></form>'
    )


def describe(prediction: LatestPrediction) -> str:
    """What a prediction says, in words: the likeliest failing component, or the model's outputs."""
    outputs = prediction.outputs
    if prediction.prediction_type == PredictionType.COMPONENT_FAILURE.value and outputs:
        faults = {name: p for name, p in outputs.items() if name != "none"}
        if faults:
            component, chance = max(faults.items(), key=lambda item: item[1])
            return f'<span class="risk">{e(label(component))}: {chance:.0%}</span> likely to fail'
    shown = ", ".join(f"{e(label(name))} {value:.3g}" for name, value in list(outputs.items())[:4])
    return shown or "no outputs"


def predictions_list(predictions: Iterable[LatestPrediction]) -> str:
    items = [
        f"<li>{e(label(p.model_name))} <span class='muted'>v{e(p.model_version)}</span>: {describe(p)} "
        f"<span class='muted'>({e(when(p.made_at))})</span></li>"
        for p in predictions
    ]
    return f"<ul>{''.join(items)}</ul>" if items else '<p class="muted">No prediction yet.</p>'


def models_table(states: Iterable[ModelState]) -> str:
    rows = [
        f"<tr><td>{e(label(s.model_name))}</td><td>{e(s.active_version or 'none')}</td>"
        f"<td>{e(label(s.state))}</td></tr>"
        for s in states
    ]
    if not rows:
        return '<p class="muted">No model installed yet.</p>'
    return (
        '<table><caption class="muted">Active model versions</caption>'
        '<thead><tr><th scope="col">Model</th><th scope="col">Version</th><th scope="col">State</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def heaters_page(
    heaters: list[tuple[str, str]],
    latest: dict[str, list[LatestPrediction]],
    states: list[ModelState],
    online: bool,
    waiting: int,
) -> str:
    link = "online: sending now" if online else "offline: everything is kept on the gateway"
    cards = [
        f'<li><a href="/heaters/{e(device_id)}">{e(device_id)}</a> <span class="muted">{e(device_type)}</span>'
        f"{predictions_list(latest.get(device_id, []))}</li>"
        for device_id, device_type in heaters
    ]
    listed = f'<ul class="cards">{"".join(cards)}</ul>' if cards else '<p class="muted">No heater heard from yet.</p>'
    return (
        f'<h1>Heaters</h1><p>Cloud link <span class="state">{e(link)}</span>; '
        f'<a href="/outbox">{waiting} outcome(s) to send</a>.</p>'
        f"{models_table(states)}<h2>On this site</h2>{listed}"
    )


def readings_table(summary: ReadingsSummary | None) -> str:
    if summary is None:
        return '<p class="muted">No reading in the gateway\'s memory (it keeps the last day while running).</p>'
    rows = [
        f'<tr><th scope="row">{e(label(name))}</th><td>{now:.1f}</td><td>{low:.1f} – {high:.1f}</td></tr>'
        for name, (now, low, high) in summary.measures.items()
    ]
    codes = ", ".join(str(code) for code in summary.error_codes) or "none"
    return (
        f"<p>Last reading {e(when(summary.last_reading))}; {summary.minutes_heard} of the last "
        f"{summary.span_minutes} minutes heard. Error codes: {e(codes)}.</p>"
        '<table><thead><tr><th scope="col">Measure</th><th scope="col">Latest</th>'
        f'<th scope="col">Range</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def outcome_form(
    device_id: str, csrf: str, outcome_id: str, suggested: str | None, values: dict[str, str], error: str | None
) -> str:
    chosen = values.get("component") or suggested
    options = "".join(
        f'<option value="{e(c.value)}"{" selected" if c.value == chosen else ""}>{e(label(c.value))}</option>'
        for c in Component
    )
    results = "".join(
        f'<label><input type="radio" name="result" value="{e(r.value)}" required'
        f"{' checked' if values.get('result') == r.value else ''}>{e(label(r.value))}</label>"
        for r in OutcomeResult
    )
    problem = f'<p class="note bad" role="alert">{e(error)}</p>' if error else ""
    return (
        f'<h2 id="log">Log what you found</h2>{problem}'
        f'<form method="post" action="/heaters/{e(device_id)}/outcomes">{csrf_field(csrf)}'
        f'<input type="hidden" name="outcome_id" value="{e(outcome_id)}">'
        f'<label for="component">Component</label><select id="component" name="component" required>{options}</select>'
        f"<fieldset><legend>Result</legend>{results}</fieldset>"
        '<label for="technician">Your name (optional)</label>'
        f'<input id="technician" name="technician" maxlength="128" value="{e(values.get("technician", ""))}">'
        '<label for="notes">Notes (optional)</label>'
        f'<textarea id="notes" name="notes" rows="3" maxlength="4000">{e(values.get("notes", ""))}</textarea>'
        '<button type="submit">Save outcome</button></form>'
    )


def outcomes_table(outcomes: list[SiteOutcome], queued: set[str], with_device: bool) -> str:
    """Three narrow columns, so a phone never scrolls sideways: what was found (and where), when, and whether
    the cloud has it."""
    if not outcomes:
        return '<p class="muted">No outcome logged on this gateway yet.</p>'
    rows = []
    for o in outcomes:
        device = f'<a href="/heaters/{e(o.device_id)}">{e(o.device_id)}</a><br>' if with_device else ""
        state = "queued" if o.msg_id in queued else "sent"
        rows.append(
            f"<tr><td>{device}{e(label(o.component or ''))}: {e(label(o.result or ''))}</td>"
            f'<td>{e(short_when(o.observed_at))}</td><td class="state">{state}</td></tr>'
        )
    return (
        '<table><thead><tr><th scope="col">Found</th><th scope="col">Logged (UTC)</th><th scope="col">Cloud</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def heater_page(
    device_id: str,
    device_type: str,
    predictions: list[LatestPrediction],
    summary: ReadingsSummary | None,
    form: str,
    logged: str | None,
    history: str,
) -> str:
    saved = (
        f'<p class="note" role="status">Outcome {e(logged)} saved on the gateway; it goes to the cloud when the '
        "gateway is online.</p>"
        if logged
        else ""
    )
    return (
        f'<h1>{e(device_id)} <span class="muted">{e(device_type)}</span></h1>{saved}'
        f"<h2>Latest predictions</h2>{predictions_list(predictions)}"
        f"<h2>Recent readings</h2>{readings_table(summary)}{form}"
        f"<h2>Outcomes logged here</h2>{history}"
    )


def outbox_page(outcomes: str, by_channel: dict[str, int]) -> str:
    waiting = (
        "".join(f"<li>{e(label(channel))}: {count}</li>" for channel, count in sorted(by_channel.items()))
        or "<li>nothing: all sent</li>"
    )
    return (
        "<h1>To send</h1><p>Messages the gateway keeps until the cloud acknowledges them:</p>"
        f"<ul>{waiting}</ul><h2>Outcomes logged on this gateway</h2>{outcomes}"
    )


def message_page(title: str, text: str) -> str:
    return f'<h1>{e(title)}</h1><p>{e(text)}</p><p><a href="/">Back to the start</a></p>'
