"""Leader locks (``cloud.data.leader``): one holder per job, released with the holder, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from cloud.data.leader import LeaderLock
from tests import postgres_run


@pytest.fixture
def schema_urls(postgres_schema: Callable[[], Engine]) -> Iterator[Callable[[], str]]:
    """URLs of fresh PostgreSQL schemas (the fixture's own first), the others dropped afterwards."""
    admin = postgres_schema()
    made: list[str] = []

    def make() -> str:
        with admin.begin() as connection:
            if made:
                schema = f"leader_test_{uuid.uuid4().hex[:12]}"
                connection.execute(text(f"CREATE SCHEMA {schema}"))
            else:
                schema = connection.execute(text("SELECT current_schema()")).scalar()
        made.append(schema)
        return postgres_run.schema_url(schema)

    try:
        yield make
    finally:
        with admin.begin() as connection:
            for schema in made[1:]:
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))


@pytest.mark.postgres
def test_one_holder_per_job_on_postgresql_and_the_next_takes_it_once_released(schema_urls) -> None:
    url = schema_urls()
    first, second, other_job = LeaderLock(url, "job"), LeaderLock(url, "job"), LeaderLock(url, "x")
    try:
        assert first.acquire() and first.acquire()  # held, and still held
        assert not second.acquire()
        assert other_job.acquire()
        first.release()
        assert second.acquire()
    finally:
        for lock in (first, second, other_job):
            lock.release()


@pytest.mark.postgres
def test_the_same_job_in_another_schema_has_its_own_leader(schema_urls) -> None:
    locks = [LeaderLock(schema_urls(), "job"), LeaderLock(schema_urls(), "job")]
    try:
        assert all(lock.acquire() for lock in locks)
    finally:
        for lock in locks:
            lock.release()


@pytest.mark.postgres
def test_a_leader_whose_session_ended_leads_only_after_taking_the_lock_again(
    schema_urls, postgres_schema: Callable[[], Engine]
) -> None:
    url = schema_urls()
    leader, follower = LeaderLock(url, "job"), LeaderLock(url, "job")
    admin = postgres_schema()
    try:
        assert leader.acquire()
        pid = leader._connection.execute(text("SELECT pg_backend_pid()")).scalar()
        with admin.connect() as connection:  # the server ends the leader's session: its lock goes with it
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        assert follower.acquire()
        assert not leader.acquire()  # it notices the lost session, and the lock is another's now
    finally:
        leader.release()
        follower.release()


def test_one_holder_per_job_on_sqlite_by_a_lock_file_beside_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'iotsphere.db'}"
    first, second = LeaderLock(url, "job"), LeaderLock(url, "job")
    try:
        assert first.acquire() and first.acquire()
        assert not second.acquire()
        assert LeaderLock(url, "other").acquire()
        first.release()
        assert second.acquire()
    finally:
        first.release()
        second.release()
    assert (tmp_path / "iotsphere-leader-job.lock").exists()


def test_a_database_in_memory_has_one_process_so_always_a_leader() -> None:
    assert LeaderLock("sqlite://", "job").acquire()
