"""Which database a URL names, and the one refusal while the services' queries run on SQLite only."""

from __future__ import annotations

from pathlib import Path

from cloud.errors import Unavailable

SETTING = "IOTSPHERE_DATABASE_URL"


class SQLiteOnly(Unavailable, ValueError):
    """The URL names a database the cloud's services cannot query yet: they speak SQLite until each owner is
    converted to the data layer (docs/data-layer.md). The schema itself already runs there (Alembic)."""


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def sqlite_file(url: str) -> Path:
    """The file a ``sqlite:///PATH`` URL names; :class:`SQLiteOnly` for any other database, ValueError for no URL.

    The message never repeats the URL: a PostgreSQL one may hold a password.
    """
    from sqlalchemy.engine import make_url  # here: the cloud's config reads this only when the variable is set
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"{SETTING} is not a database URL: give sqlite:///PATH or postgresql://…") from None
    backend = parsed.get_backend_name()
    if backend != "sqlite":
        raise SQLiteOnly(
            f"{SETTING} names a {backend} database, but the cloud's services query SQLite only until the data layer "
            "conversion lands (docs/data-layer.md). Its schema can be created there now with "
            "`alembic -c cloud/data/alembic.ini upgrade head`; to run the cloud, unset the variable or give "
            "sqlite:///PATH."
        )
    if parsed.database in (None, "", ":memory:"):
        raise ValueError(f"{SETTING} must name a file, e.g. sqlite:///var/cloud/iotsphere.db")
    return Path(parsed.database)
