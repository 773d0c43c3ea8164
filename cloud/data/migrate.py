"""Run the Alembic history (``cloud.data.migrations``) on a connection, as the cloud does when it opens a database."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, inspect

from cloud.data.migrations import BASELINE, LOCATION


def alembic_config() -> Config:
    """Alembic's configuration without an ini file: the script location is ``cloud/data/migrations``."""
    config = Config()
    config.set_main_option("script_location", str(LOCATION))
    return config


def upgrade(connection: Connection) -> None:
    """Bring the database behind ``connection`` to the newest revision, in the caller's transaction.

    A database with ``schema_migrations`` but no ``alembic_version`` was made by the legacy steps (which the caller
    has run to step 21): it is stamped at the baseline, so the baseline does not build what is already there.
    """
    config = alembic_config()
    config.attributes["connection"] = connection
    tables = set(inspect(connection).get_table_names())
    if "schema_migrations" in tables and "alembic_version" not in tables:
        command.stamp(config, BASELINE)
    command.upgrade(config, "head")
