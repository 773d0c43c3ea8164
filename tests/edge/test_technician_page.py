"""The technician page on a real agent's local API over HTTP: pairing codes (once, expiring, burned by wrong tries),
the session cookie and CSRF, the heaters with their predictions, and an outcome form that stores one outcome however
often it is submitted."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from edge_agent.agent import EdgeAgent
from edge_agent.cli import edge
from edge_agent.config import AgentConfig
from edge_agent.model_loader import load_model
from edge_agent.pairing import MAX_FAILURES, PAIRING_FILE, Pairing
from edge_agent.technician_page import COOKIE
from firmware_sim.live import Fleet
from shared.messages import parse_up
from tests.edge.releases import build_serving_release

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = "gw-page"
#: readings enough for a prediction: the window must be half covered
HOURS = 13


def provision(data_dir: Path, gateway_id: str = GATEWAY) -> None:
    """An active failure model on the gateway, as an earlier update would have installed."""
    agent = EdgeAgent(AgentConfig(gateway_id, data_dir))
    built = build_serving_release()
    agent.store.install(built.release, built.release_bytes, built.onnx_bytes)
    agent.store.activate(load_model(built.onnx_bytes, built.release))
    agent.stop()


def pair_code(data_dir: Path) -> str:
    """A code from ``iotsphere edge pair``, as the technician reads it off the gateway."""
    result = CliRunner().invoke(edge, ["pair", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    return re.search(r"pairing code (\w{4}-\w{4})", result.output).group(1)


@contextmanager
def paired(base_url: str, data_dir: Path) -> Iterator[httpx.Client]:
    """A phone paired with the gateway, holding its session."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        answer = client.post("/pair", data={"code": pair_code(data_dir)})
        assert answer.status_code == 303, answer.text
        yield client


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[tuple[EdgeAgent, str, Path]]:
    """A gateway with two heaters, a day's prediction each, and its page on a free loopback port."""
    data_dir = tmp_path_factory.mktemp("gateway")
    provision(data_dir)
    agent = EdgeAgent(AgentConfig(GATEWAY, data_dir, local_api_port=0))
    agent.start()
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    fleet = Fleet(GATEWAY, heaters=2, seed=3, start=start)
    agent.run_in_process(reading for _ in range(HOURS * 60 + 5) for reading in fleet.step())
    yield agent, f"http://127.0.0.1:{agent.local_api.port}", data_dir
    agent.stop(0)


def test_a_code_pairs_one_phone_once_with_a_strict_httponly_session(gateway):
    agent, base_url, data_dir = gateway
    code = pair_code(data_dir)
    assert (data_dir / PAIRING_FILE).stat().st_mode & 0o077 == 0, "the codes are the gateway user's only"
    with httpx.Client(base_url=base_url, timeout=10) as phone:
        first = phone.get("/")
        assert first.status_code == 200 and 'action="/pair"' in first.text and "Heaters" not in first.text
        assert phone.get("/outbox").headers["location"] == "/", "every page but the pairing form needs a session"
        typed = code.lower().replace("-", " ")  # typed in any case, the dash as a space
        answer = phone.post("/pair", data={"code": typed})
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert "Path=/" in cookie and "Max-Age=" in cookie
        heaters = phone.get("/")
        assert heaters.status_code == 200 and "<h1>Heaters</h1>" in heaters.text
        assert heaters.headers["content-security-policy"].startswith("default-src 'none'")
        assert phone.post("/signout", data={"csrf": csrf_of(heaters.text)}).status_code == 303
        assert 'action="/pair"' in phone.get("/").text, "signed out: back to the pairing form"
    with httpx.Client(base_url=base_url, timeout=10) as second_phone:
        again = second_phone.post("/pair", data={"code": code})
        assert again.status_code == 403 and COOKIE not in second_phone.cookies, "a code works once"


def test_codes_expire_and_wrong_tries_burn_them(tmp_path: Path, gateway):
    now = [1_000_000.0]
    pairing = Pairing(tmp_path, clock=lambda: now[0])
    late = pairing.issue(minutes=10)
    now[0] += 10 * 60 + 1
    assert pairing.redeem(late) is None, "expired after its minutes"
    guessed = pairing.issue()
    for attempt in range(MAX_FAILURES):
        assert pairing.redeem(f"0000-000{attempt}") is None
    assert pairing.redeem(guessed) is None, "burned by the wrong tries before it"
    kept = pairing.issue()
    for attempt in range(MAX_FAILURES - 1):
        assert pairing.redeem(f"0000-000{attempt}") is None
    token, session = pairing.redeem(kept)
    assert pairing.session(token) == session
    now[0] += 2 * 3600 + 1
    assert pairing.session(token) is None, "idle too long"
    pairing.close()

    _, base_url, data_dir = gateway  # and over HTTP: the page answers wrong codes with 403 and no session
    code = pair_code(data_dir)
    with httpx.Client(base_url=base_url, timeout=10) as phone:
        for _ in range(MAX_FAILURES):
            assert phone.post("/pair", data={"code": "ZZZZ-ZZZZ"}).status_code == 403
        assert phone.post("/pair", data={"code": code}).status_code == 403
        assert COOKIE not in phone.cookies


def test_heaters_show_their_latest_prediction_per_model_and_the_active_version(gateway):
    agent, base_url, data_dir = gateway
    heaters = agent.devices.heaters()
    latest = agent.devices.latest_by_model([device_id for device_id, _ in heaters])
    assert len(heaters) == 2 and all(latest[device_id] for device_id, _ in heaters)
    [state] = agent.model_states()
    with paired(base_url, data_dir) as phone:
        page = phone.get("/").text
        assert f"<td>{state.active_version}</td>" in page, "the active model version"
        for device_id, _ in heaters:
            prediction = latest[device_id][0]
            assert f'href="/heaters/{device_id}"' in page
            component = max((c for c in prediction.outputs if c != "none"), key=prediction.outputs.get)
            chance = f"{prediction.outputs[component]:.0%}"
            assert f"{component.replace('_', ' ')}: {chance}" in page, "which component, how likely"
        heater = phone.get(f"/heaters/{heaters[0][0]}").text
        assert "Recent readings" in heater and "dhw temperature" in heater and "Last reading" in heater
        assert phone.get("/heaters/dev-nowhere").status_code == 404


def test_a_double_submit_stores_one_outcome_and_forms_need_the_csrf_token(gateway):
    agent, base_url, data_dir = gateway
    device_id = agent.devices.heaters()[1][0]
    outcomes_before = _queued_outcomes(agent)
    with paired(base_url, data_dir) as phone:
        page = phone.get(f"/heaters/{device_id}").text
        outcome_id = re.search(r'name="outcome_id" value="([^"]+)"', page).group(1)
        form = {"csrf": csrf_of(page), "outcome_id": outcome_id, "component": "thermostat", "result": "failed"}
        form |= {"notes": "contacts burnt", "technician": "Ana"}
        action = f"/heaters/{device_id}/outcomes"
        assert phone.post(action, data={**form, "csrf": "forged"}).status_code == 403
        assert phone.post(action, data={k: v for k, v in form.items() if k != "csrf"}).status_code == 403
        with httpx.Client(base_url=base_url) as stranger:
            assert stranger.post(action, data=form).status_code == 403, "no session, no outcome"
        assert _queued_outcomes(agent) == outcomes_before
        first, second = phone.post(action, data=form), phone.post(action, data=form)
        assert first.status_code == second.status_code == 303
        assert first.headers["location"] == f"/heaters/{device_id}?logged={outcome_id}"
        mine = [o for o in _queued_outcomes(agent) if o.outcome_id == outcome_id]
        assert len(mine) == 1 and (mine[0].component, mine[0].result, mine[0].notes) == (
            "thermostat",
            "failed",
            "contacts burnt",
        )
        assert mine[0].prediction_id == agent.devices.latest_prediction(device_id, datetime.now(UTC) - timedelta(14))
        saved = phone.get(first.headers["location"]).text
        assert f"Outcome {outcome_id} saved" in saved and '<td class="state">queued</td>' in saved
        assert outcome_id not in re.search(r'name="outcome_id" value="([^"]+)"', saved).group(1), "a new id"
        outbox = phone.get("/outbox").text
        assert "outcomes: " in outbox and f'href="/heaters/{device_id}"' in outbox and "queued" in outbox

        hostile = "</textarea><script>alert(1)</script>"
        refused = phone.post(action, data={**form, "outcome_id": "x" * 12, "component": "flux", "notes": hostile})
        assert refused.status_code == 400 and "component" in refused.text, "the form again, with what was wrong"
        assert "<script>" not in refused.text and "&lt;/textarea&gt;&lt;script&gt;" in refused.text, "escaped"
    assert len([o for o in _queued_outcomes(agent) if o.outcome_id == "x" * 12]) == 0


def test_the_json_route_keeps_its_token_and_takes_an_outcome_id_once(gateway):
    agent, base_url, data_dir = gateway
    device_id = agent.devices.heaters()[0][0]
    body = {"device": device_id, "component": "sediment", "result": "ok", "outcome_id": "app-outcome-0001"}
    with paired(base_url, data_dir) as phone:
        assert phone.post("/outcomes", json=body).status_code == 401, "a paired phone's session is not the token"
    auth = {"Authorization": f"Bearer {(data_dir / 'local_api.token').read_text().strip()}"}
    first = httpx.post(f"{base_url}/outcomes", json=body, headers=auth)
    again = httpx.post(f"{base_url}/outcomes", json=body, headers=auth)
    assert first.status_code == again.status_code == 201
    assert first.json() == {**again.json(), "notes": None}
    assert [o.outcome_id for o in _queued_outcomes(agent)].count("app-outcome-0001") == 1
    elsewhere = httpx.post(f"{base_url}/outcomes", json={**body, "device": agent.devices.heaters()[1][0]}, headers=auth)
    assert elsewhere.status_code == 400 and device_id in elsewhere.json()["detail"]


def test_pairing_needs_a_gateway_data_dir(tmp_path: Path):
    result = CliRunner().invoke(edge, ["pair", "--data-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "start it once first" in result.output
    assert not (tmp_path / "nowhere").exists()


def test_the_agent_and_the_cli_do_not_load_the_page_modules():
    """They come with the local API only (edge_agent.local_api imports them when it is served)."""
    probe = (
        "import sys, edge_agent.agent, edge_agent.cli\n"
        "print(sorted(m for m in sys.modules if m.startswith('edge_agent.technician_')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]"


def _queued_outcomes(agent: EdgeAgent) -> list:
    rows = [row for row in agent.outbox.pending(1000) if row.channel == "outcomes"]
    return [outcome for row in rows for outcome in parse_up(row.channel, row.payload).outcomes]
