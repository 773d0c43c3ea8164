"""Which database a URL names: a SQLite file (the default) or PostgreSQL; any other is refused."""

from __future__ import annotations

from pathlib import Path

SETTING = "IOTSPHERE_DATABASE_URL"
#: the backends the cloud runs on
BACKENDS = ("sqlite", "postgresql")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def is_postgres(target: str | Path) -> bool:
    """Whether ``target`` (a URL, or a SQLite file's path) names a PostgreSQL database."""
    return isinstance(target, str) and target.startswith(("postgresql:", "postgresql+"))


def check(url: str) -> None:
    """ValueError, naming the variable but never repeating the URL (a PostgreSQL one may hold a password), unless
    ``url`` names a SQLite file or a PostgreSQL database."""
    if backend(url) == "sqlite":
        sqlite_file(url)


def backend(url: str) -> str:
    """``sqlite`` or ``postgresql``; ValueError for anything else."""
    from sqlalchemy.engine import make_url  # here: the cloud's config reads this only when the variable is set
    from sqlalchemy.exc import ArgumentError

    try:
        name = make_url(url).get_backend_name()
    except ArgumentError:
        raise ValueError(f"{SETTING} is not a database URL: give sqlite:///PATH or postgresql://…") from None
    if name not in BACKENDS:
        raise ValueError(f"{SETTING} names a {name} database: the cloud runs on SQLite and PostgreSQL")
    return name


def sqlite_file(url: str) -> Path:
    """The file a ``sqlite:///PATH`` URL names; ValueError for any other URL."""
    from sqlalchemy.engine import make_url

    if backend(url) != "sqlite":
        raise ValueError(f"{SETTING} names a PostgreSQL database, not a SQLite file")
    database = make_url(url).database
    if database in (None, "", ":memory:"):
        raise ValueError(f"{SETTING} must name a file, e.g. sqlite:///var/cloud/iotsphere.db")
    return Path(database)


def shown(url: str) -> str:
    """The database as a message may name it: a SQLite file's path; a PostgreSQL URL without its password."""
    if backend(url) == "sqlite":
        return str(sqlite_file(url))
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
