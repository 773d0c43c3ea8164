"""The model registry, staged rollouts and audit checkpoints audit their own changes, however they are called: a
direct call (the actor given, else the configured one), the API (the caller's key, nothing per request), the CLI
(the configured actor) and the rollout worker (``rollout-worker``). A refused change records nothing, and a change
whose entry cannot be written is not made — its director documents included.

On a real cloud: versions 1 and 2 signed into TUF, version 1 production on ten gateways (``tests.rollouts``).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner
from sqlalchemy.exc import IntegrityError

from cloud.api.roles import Role
from cloud.audit_checkpoints import AuditCheckpoints, sign_now
from cloud.config import CloudConfig
from cloud.data.connections import in_transaction
from cloud.registry import MLModelRegistry, RegistryRefused, RegistryUnavailable
from cloud.releases import keystore
from cloud.releases.service import ReleaseService
from cloud.rollouts import store
from cloud.rollouts.engine import RolloutRefused
from cloud.rollouts.worker import RolloutWorker
from iotsphere.cli import main
from tests.api.conftest import auth, served_cloud
from tests.releases.conftest import PASSPHRASE
from tests.rollouts.conftest import NAME, PLAN, Cloud
from tests.rows import audit_head, refusing_audit_entries, rows_of

pytestmark = pytest.mark.mqtt

#: every table a registry or rollout change writes: a change not made leaves each of them as it was
TABLES = (
    "models",
    "model_history",
    "rollouts",
    "rollout_stages",
    "rollout_gateways",
    "rollout_decisions",
    "director_documents",
    "director_fleet",
    "audit_checkpoints",
)


def _head(db: sqlite_utils.Database) -> int:
    return audit_head(db)


def _entries(db: sqlite_utils.Database, after: int = 0) -> list[dict[str, Any]]:
    fields = ("actor", "action", "target")
    return [{field: row[field] for field in fields} for row in rows_of(db, "audit_log") if row["id"] > after]


def _snapshot(db: sqlite_utils.Database) -> dict[str, list[dict]]:
    return {table: rows_of(db, table) for table in TABLES}


def _registry(cloud: Cloud) -> MLModelRegistry:
    return MLModelRegistry(cloud.db)


def _director(cloud: Cloud) -> ReleaseService:
    return ReleaseService(cloud.config, PASSPHRASE)


def _candidate(cloud: Cloud, version: str = "9", **actor: str) -> None:
    metadata = {"prediction_type": NAME, "feature_set_version": "fs1", "model_sha256": "9" * 64}
    _registry(cloud).register_model(NAME, version, f"/artifacts/{NAME}/{version}", metadata, **actor)


def _started(cloud: Cloud) -> int:
    return cloud.rollouts.start(NAME, "2", actor="setup", reason="beats v1", plan=PLAN).rollout_id


def _halted(cloud: Cloud) -> int:
    rollout_id = _started(cloud)
    cloud.rollouts.halt(rollout_id, actor="setup", reason="freeze")
    return rollout_id


def _canary_committed(cloud: Cloud) -> int:
    rollout_id = _started(cloud)
    for gateway_id in store.load(cloud.db, rollout_id).stages[0].gateway_ids:
        cloud.commit(gateway_id)
    return rollout_id


def _promoted(cloud: Cloud) -> None:
    _registry(cloud).promote_model_to_production(NAME, "2", actor="setup", reason="beats v1", rollout=_director(cloud))


@dataclass(frozen=True)
class Change:
    """One mutating call: the action it records first, what it acts on (made by ``setup``), and the call."""

    action: str
    call: Callable[..., Any]
    setup: Callable[[Cloud], Any] = lambda cloud: None


CHANGES = {
    "register": Change("models.register", lambda cloud, _, **a: _candidate(cloud, **a)),
    "evaluate": Change(
        "models.evaluate", lambda cloud, _, **a: _registry(cloud).record_evaluation(NAME, "2", True, {}, **a)
    ),
    "discard": Change(
        "models.discard", lambda cloud, _, **a: _registry(cloud).discard_candidate(NAME, "9", **a), _candidate
    ),
    "promote": Change(
        "models.promote",
        lambda cloud, _, **a: _registry(cloud).promote_model_to_production(
            NAME, "2", reason="beats v1", rollout=_director(cloud), **a
        ),
    ),
    "rollback": Change(
        "models.rollback",
        lambda cloud, _, **a: _registry(cloud).rollback_model(NAME, reason="alarms", rollout=_director(cloud), **a),
        _promoted,
    ),
    "rollout start": Change(
        "rollouts.started", lambda cloud, _, **a: cloud.rollouts.start(NAME, "2", reason="beats v1", plan=PLAN, **a)
    ),
    "rollout advance": Change(
        "rollouts.stage_passed", lambda cloud, rid, **a: cloud.rollouts.advance(rid, **a), _canary_committed
    ),
    "rollout halt": Change(
        "rollouts.halted", lambda cloud, rid, **a: cloud.rollouts.halt(rid, reason="x", **a), _started
    ),
    "rollout resume": Change(
        "rollouts.resumed", lambda cloud, rid, **a: cloud.rollouts.resume(rid, reason="x", **a), _halted
    ),
    "rollout cancel": Change(
        "rollouts.cancelled", lambda cloud, rid, **a: cloud.rollouts.cancel(rid, reason="x", **a), _started
    ),
    "rollout rollback": Change(
        "rollouts.rolled_back", lambda cloud, rid, **a: cloud.rollouts.roll_back(rid, reason="x", **a), _started
    ),
    "direct": Change(
        "cloud.direct",
        lambda cloud, _, **a: _director(cloud).direct_gateways(cloud.db, NAME, "2", ["gw-ro-00"], **a),
    ),
    "checkpoint": Change(
        "audit.checkpoint", lambda cloud, _, **a: sign_now(cloud.db, cloud.config.keys_dir, PASSPHRASE, **a)
    ),
}


@pytest.mark.parametrize("name", CHANGES)
def test_a_direct_call_records_the_actor_it_is_given(name: str, cloud: Cloud) -> None:
    subject = CHANGES[name].setup(cloud)
    before = _head(cloud.db)

    CHANGES[name].call(cloud, subject, actor="ops:alice")

    entries = _entries(cloud.db, before)
    assert entries and entries[0]["action"] == CHANGES[name].action
    assert {entry["actor"] for entry in entries} == {"ops:alice"}


@pytest.mark.parametrize("name", ["promote", "rollout start", "rollout halt", "checkpoint"])
def test_a_direct_call_without_an_actor_records_the_configured_one(
    name: str, cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject = CHANGES[name].setup(cloud)
    monkeypatch.setenv("IOTSPHERE_ACTOR", "robot:nightly")
    before = _head(cloud.db)

    CHANGES[name].call(cloud, subject)

    assert [(e["actor"], e["action"]) for e in _entries(cloud.db, before)][0] == ("robot:nightly", CHANGES[name].action)


@contextmanager
def _audit_refused(db: sqlite_utils.Database) -> Iterator[None]:
    """Every connection's audit insert fails (the CLI opens its own)."""
    with refusing_audit_entries(db):
        yield


@pytest.mark.parametrize("name", CHANGES)
def test_a_change_whose_audit_entry_cannot_be_written_is_not_made(name: str, cloud: Cloud) -> None:
    subject = CHANGES[name].setup(cloud)
    before, head = _snapshot(cloud.db), _head(cloud.db)
    with _audit_refused(cloud.db), pytest.raises((IntegrityError, RegistryUnavailable)) as raised:
        CHANGES[name].call(cloud, subject, actor="ops:alice")

    cause = raised.value.__cause__ if isinstance(raised.value, RegistryUnavailable) else raised.value
    assert isinstance(cause, IntegrityError) and str(cause.orig).splitlines()[0] == "no"
    assert _snapshot(cloud.db) == before  # the registry, the rollout and the director documents as they were
    assert _head(cloud.db) == head and not in_transaction(cloud.db)


def test_a_refused_change_records_nothing(cloud: Cloud) -> None:
    _candidate(cloud, "9", actor="setup")
    rollout_id = _started(cloud)
    cloud.rollouts.cancel(rollout_id, actor="setup", reason="not now")
    before = _head(cloud.db)
    registry, director = _registry(cloud), _director(cloud)

    with pytest.raises(RegistryRefused, match="not released"):
        registry.promote_model_to_production(NAME, "9", actor="x", reason="r", rollout=director)
    with pytest.raises(RegistryRefused, match="already production"):
        registry.promote_model_to_production(NAME, "1", actor="x", reason="r", rollout=director)
    with pytest.raises(RolloutRefused, match="only a running rollout can become halted"):
        cloud.rollouts.halt(rollout_id, actor="x", reason="r")
    with pytest.raises(RolloutRefused, match="needs a reason"):
        cloud.rollouts.start(NAME, "2", actor="x", reason=" ", plan=PLAN)
    with pytest.raises(ValueError, match="already registered"):
        _candidate(cloud, "9", actor="x")
    registry.discard_candidate(NAME, "2", actor="x")  # released: never removed, so nothing to record
    cloud.rollouts.advance(rollout_id, actor="x")  # cancelled: left alone

    assert _head(cloud.db) == before


def test_the_rollout_worker_records_its_decisions_as_itself(cloud: Cloud) -> None:
    rollout_id = _canary_committed(cloud)
    before = _head(cloud.db)

    RolloutWorker(cloud.config, PASSPHRASE).run_once(cloud.rollouts)

    entries = _entries(cloud.db, before)
    assert [(e["actor"], e["action"], e["target"]) for e in entries][:2] == [
        ("rollout-worker", "rollouts.stage_passed", f"rollout:{rollout_id}"),
        ("rollout-worker", "rollouts.stage_started", f"rollout:{rollout_id}"),
    ]


def test_a_checkpoint_asked_for_is_audited_and_the_schedules_are_not(cloud: Cloud) -> None:
    before = _head(cloud.db)

    AuditCheckpoints(cloud.db).sign(keystore.audit_key(cloud.config.keys_dir, PASSPHRASE))  # the worker's call
    scheduled = _head(cloud.db)
    asked = sign_now(cloud.db, cloud.config.keys_dir, PASSPHRASE, actor="ops:alice")

    assert scheduled == before and [c.count for c in AuditCheckpoints(cloud.db).all()] == [before, before]
    [entry] = [row for row in rows_of(cloud.db, "audit_log") if row["id"] > before]
    assert (entry["actor"], entry["action"], entry["id"]) == ("ops:alice", "audit.checkpoint", asked.count + 1)
    assert json.loads(entry["details_json"]) == {"count": before, "head_hash": asked.head_hash, "keyid": asked.keyid}


def test_api_changes_are_recorded_by_their_services_with_the_key_as_actor_and_refusals_per_request(
    released: CloudConfig, cloud: Cloud
) -> None:
    with served_cloud(released) as api:
        operator, admin = api.tokens[Role.OPERATOR], api.tokens[Role.ADMIN]
        key = f"key:{operator.split('_')[1]}"
        before = _head(cloud.db)
        promoted = api.http.post(f"/api/models/{NAME}/2/promote", json={"reason": "beats v1"}, headers=auth(operator))
        promotion = _entries(cloud.db, before)
        before = _head(cloud.db)
        refused = api.http.post(f"/api/models/{NAME}/2/promote", json={"reason": "again"}, headers=auth(operator))
        refusal = _entries(cloud.db, before)
        before = _head(cloud.db)
        rolled = api.http.post(f"/api/models/{NAME}/rollback", json={"reason": "alarms"}, headers=auth(operator))
        started = api.http.post(
            "/api/rollouts", json={"model_name": NAME, "version": "2", "reason": "again"}, headers=auth(operator)
        )
        checkpoint = api.http.post("/api/audit/checkpoints", headers=auth(admin))
        later = _entries(cloud.db, before)

    assert (promoted.status_code, refused.status_code, rolled.status_code) == (200, 409, 200), promoted.text
    assert (started.status_code, checkpoint.status_code) == (201, 200), started.text
    assert [(e["actor"], e["action"]) for e in promotion] == [(key, "models.promote")]
    assert [(e["actor"], e["action"]) for e in refusal] == [(key, "http.post")]
    assert [(e["actor"], e["action"]) for e in later] == [
        (key, "models.rollback"),
        (key, "rollouts.started"),
        (key, "rollouts.stage_started"),
        (f"key:{admin.split('_')[1]}", "audit.checkpoint"),
    ]
    assert _registry(cloud).history(NAME)[0]["actor"] == key


def _cli(config: CloudConfig, *args: str, actor: str = "", exit_code: int = 0) -> str:
    env = {"IOTSPHERE_ACTOR": actor, "IOTSPHERE_TOPIC_PREFIX": config.topic_prefix}
    result = CliRunner().invoke(main, [*args, "--data-dir", str(config.data_dir)], env=env)
    assert result.exit_code == exit_code, result.output
    return result.output


def test_cli_changes_record_the_configured_actor_and_are_not_made_when_their_entry_cannot_be(cloud: Cloud) -> None:
    config = cloud.config
    before = _head(cloud.db)
    _cli(config, "models", "promote", NAME, "2", "--reason", "beats v1", actor="robot:cron")
    _cli(config, "models", "rollback", NAME, "--reason", "alarms")
    _cli(config, "rollouts", "start", NAME, "2", "--reason", "again", "--stage", "20", "--stage", "100")
    _cli(config, "rollouts", "halt", "1", "--reason", "freeze", actor="robot:cron")

    user = f"cli:{getpass.getuser()}"
    assert [(e["actor"], e["action"]) for e in _entries(cloud.db, before)] == [
        ("robot:cron", "models.promote"),
        (user, "models.rollback"),
        (user, "rollouts.started"),
        (user, "rollouts.stage_started"),
        ("robot:cron", "rollouts.halted"),
    ]
    assert [e["actor"] for e in _registry(cloud).history(NAME)][:2] == [user, "robot:cron"]

    snapshot = _snapshot(cloud.db)
    with _audit_refused(cloud.db):
        refused = _cli(config, "models", "promote", NAME, "2", "--reason", "again", exit_code=1)
        _cli(config, "rollouts", "cancel", "1", "--reason", "x", exit_code=1)
    assert "the registry is unchanged" in refused
    assert _snapshot(cloud.db) == snapshot
