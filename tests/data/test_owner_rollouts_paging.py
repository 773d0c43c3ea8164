"""The ``rollouts`` owner's page of the rollouts list (the dashboard's), on SQLite and PostgreSQL: keyset by id."""

from __future__ import annotations

from sqlalchemy import Connection

from cloud.data import rollouts
from tests.data.test_owner_rollouts import _rollout


def test_pages_run_newest_first_below_the_last_id_seen(owner_connection: Connection) -> None:
    ids = [rollouts.add_rollout(owner_connection, _rollout(f"m{n}")) for n in range(5)]

    first = rollouts.rollout_ids_page(owner_connection, None, 2)
    second = rollouts.rollout_ids_page(owner_connection, first[-1], 2)
    last = rollouts.rollout_ids_page(owner_connection, second[-1], 2)

    assert first + second + last == sorted(ids, reverse=True)
    assert len(last) == 1 and rollouts.rollout_ids_page(owner_connection, last[-1], 2) == []
