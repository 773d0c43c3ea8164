"""Alembic's entry point: runs the revisions on the connection a caller hands over, or on IOTSPHERE_DATABASE_URL.

``cloud.data.migrations.upgrade`` passes its connection (inside its transaction) through ``config.attributes``; the
``alembic -c cloud/data/alembic.ini …`` command line connects to the URL of the ``-x url=…`` argument or the
variable. ``--sql`` (offline) prints the SQL for a DBA instead of running it.
"""

from __future__ import annotations

from alembic import context

from cloud.data.engine import create, database_url
from cloud.data.schema import metadata
from cloud.data.urls import SETTING


def _url() -> str:
    from shared.settings import secret

    url = context.get_x_argument(as_dictionary=True).get("url") or secret("database_url")
    if not url:
        raise SystemExit(f"Name the database: set {SETTING} or pass -x url=postgresql://… (or sqlite:///PATH)")
    return url


def _run(connection) -> None:
    # render_as_batch: SQLite alters a table by copying it, which Alembic's batch mode does for revisions it writes
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=database_url(_url()), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := context.config.attributes.get("connection")) is not None:
    _run(given)
else:
    engine = create(_url())
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()
