"""Suite-wide settings."""

import os

# Signing keys made by tests are throwaway: a light KDF keeps the suite fast. The file format and the
# decryption path are the production ones (the round count is stored in each key file).
os.environ.setdefault("IOTSPHERE_KEY_KDF_ROUNDS", "2000")

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from tests import postgres_run  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL (``IOTSPHERE_TEST_DATABASE=postgresql``), tests marked ``sqlite_only`` are deselected."""
    if not postgres_run.ENABLED:
        return
    kept = [item for item in items if item.get_closest_marker("sqlite_only") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


@pytest.fixture(scope="session")
def _postgres_run() -> Iterator[postgres_run.Schema | None]:
    """The run's schema on PostgreSQL, emptied before each test (tests/postgres_run.py); None on SQLite."""
    if not postgres_run.ENABLED:
        yield None
        return
    admin = postgres_run.admin_engine()
    schema = postgres_run.new_schema(admin, "run")
    key = os.environ.get("IOTSPHERE_FIELD_KEY")
    os.environ["IOTSPHERE_FIELD_KEY"] = postgres_run.field_key()
    try:
        yield schema
    finally:
        if key is None:
            os.environ.pop("IOTSPHERE_FIELD_KEY", None)
        else:
            os.environ["IOTSPHERE_FIELD_KEY"] = key
        schema.drop()
        admin.dispose()


@pytest.fixture(scope="module", autouse=True)
def _postgres_module(request: pytest.FixtureRequest, _postgres_run) -> Iterator[None]:
    """A module whose tests share a module-scoped fixture gets a schema of its own for them."""
    items = [item for item in request.session.items if item.module is request.module]
    if _postgres_run is None or not any(postgres_run.shares_a_wider_fixture(item) for item in items):
        yield
        return
    schema = postgres_run.new_schema(_postgres_run.admin, "module")
    try:
        with postgres_run.environment(schema.url):
            yield
    finally:
        schema.drop()


@pytest.fixture(autouse=True)
def _postgres_test(request: pytest.FixtureRequest, _postgres_run, _postgres_module) -> Iterator[None]:
    """Each test on an empty database, unless it shares its module's (above)."""
    if _postgres_run is None or postgres_run.shares_a_wider_fixture(request.node):
        yield
        return
    _postgres_run.empty()
    with postgres_run.environment(_postgres_run.url):
        yield
