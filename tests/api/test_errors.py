"""One error model: every kind of the hierarchy answers its status with ``{"detail": message}`` over real HTTP, and
no route maps errors itself."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from fastapi import Depends
from pydantic import BaseModel

import cloud.api.routes
from cloud.api.app import create_app
from cloud.api.auth import public
from cloud.api.roles import Role
from cloud.config import PASSPHRASE_ENV, CloudConfig
from cloud.errors import Invalid, IoTSphereError, NotFound, Refused, TemporarilyUnavailable, Unavailable
from iotsphere.cli import LazyGroup
from tests.api.conftest import auth, key_per_role
from tests.api.server import ThreadedServer

#: written out, not read from cloud.api.errors: the contract clients rely on
EXPECTED_STATUS = {NotFound: 404, Refused: 409, Invalid: 400, Unavailable: 503}
MESSAGE = "what went wrong, for the caller"


def _kinds_and_domain_classes() -> list[type[Exception]]:
    """The hierarchy and every domain class rebased on it (the app imports their modules)."""
    found, todo = [], [IoTSphereError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return sorted(set(found) - {IoTSphereError}, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


ERRORS = {f"{cls.__module__}.{cls.__qualname__}": cls for cls in _kinds_and_domain_classes()}


class _Strict(BaseModel):
    count: int


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The real app with one extra public route that raises the exception class its path names."""
    app = create_app(CloudConfig(data_dir=Path(tmp_path_factory.mktemp("errors")) / "cloud"))

    def raise_error(name: str) -> None:
        if name == "ValueError":
            raise ValueError(MESSAGE)
        if name == "ValidationError":
            _Strict.model_validate({"count": "many"})  # a bug in a route, not a bad request
        raise ERRORS[name](MESSAGE)

    app.add_api_route("/test/raise/{name}", raise_error, methods=["GET"], dependencies=[Depends(public)])
    with ThreadedServer(app) as server, httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


def test_the_hierarchy_and_its_domain_classes_are_found() -> None:
    assert {NotFound, Refused, Invalid, Unavailable, TemporarilyUnavailable} <= set(ERRORS.values())
    assert len(ERRORS) > 25  # UnknownModel, RegistryRefused, RolloutRefused, InvalidPolicy, KeystoreError, …


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_every_error_answers_its_kinds_status_with_the_message_as_detail(served: httpx.Client, name: str) -> None:
    cls = ERRORS[name]
    [expected] = [status for kind, status in EXPECTED_STATUS.items() if issubclass(cls, kind)]

    response = served.get(f"/test/raise/{name}")

    assert response.status_code == expected, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": MESSAGE}


@pytest.mark.parametrize(
    ("cls", "retry_after"), [(TemporarilyUnavailable, "30"), (Unavailable, None), (Refused, None), (NotFound, None)]
)
def test_retry_after_comes_only_with_a_failure_that_may_pass(
    served: httpx.Client, cls: type[Exception], retry_after: str | None
) -> None:
    response = served.get(f"/test/raise/{cls.__module__}.{cls.__qualname__}")

    assert response.headers.get("retry-after") == retry_after


@pytest.mark.parametrize("name", ["ValueError", "ValidationError"])
def test_a_bare_value_error_inside_a_route_is_the_servers_500_not_the_callers_400(
    served: httpx.Client, name: str
) -> None:
    response = served.get(f"/test/raise/{name}")

    assert response.status_code == 500
    assert MESSAGE not in response.text  # a bug's message is not the caller's to read


def test_invalid_is_a_value_error_so_callers_catching_value_error_still_do() -> None:
    assert issubclass(Invalid, ValueError)


def test_signing_without_the_passphrase_is_unavailable_from_the_signer_dependency(
    config: CloudConfig, db, http: httpx.Client, monkeypatch
) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    operator = auth(key_per_role(db)[Role.OPERATOR])

    started = http.post("/api/rollouts", headers=operator, json={"model_name": "m", "version": "1", "reason": "r"})
    listed = http.get("/api/rollouts", headers=operator)  # reading signs nothing, so needs no passphrase

    assert started.status_code == 503 and PASSPHRASE_ENV in started.json()["detail"]
    assert "retry-after" not in started.headers  # waiting does not help: the passphrase must be set
    assert listed.status_code == 200


def _route_modules() -> list[Path]:
    return sorted(Path(cloud.api.routes.__file__).parent.glob("*.py"))


#: what a route may still catch: the file system and the database failing under it, answered in place (a TUF path
#: the file system cannot hold is 404 like a missing file; the health check reports an unreadable SQLite file or an
#: unreachable PostgreSQL in its body)
ALLOWED_CATCHES = {"OSError", "sqlite3.Error", "(sqlite3.Error, DBAPIError)"}


@pytest.mark.parametrize("module", _route_modules(), ids=lambda path: path.stem)
def test_no_route_module_maps_errors_itself(module: Path) -> None:
    tree = ast.parse(module.read_text())
    caught = {ast.unparse(handler.type) for handler in ast.walk(tree) if isinstance(handler, ast.ExceptHandler)}
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}

    assert caught <= ALLOWED_CATCHES, f"{module.name} catches {caught - ALLOWED_CATCHES}: raise cloud.errors instead"
    assert "HTTPException" not in names, f"{module.name} builds HTTP errors: raise cloud.errors instead"


@pytest.mark.parametrize("cls", [NotFound, Refused, Invalid, Unavailable])
def test_the_cli_answers_the_hierarchy_with_its_message_and_exit_code_1(cls: type[Exception]) -> None:
    group = LazyGroup(name="iotsphere")

    @group.command()
    def refuse() -> None:
        raise cls(MESSAGE)

    result = CliRunner().invoke(group, ["refuse"])

    assert (result.exit_code, result.output) == (1, f"Error: {MESSAGE}\n")
    assert isinstance(result.exception, SystemExit)  # no traceback


def test_the_cli_leaves_other_errors_alone() -> None:
    group = LazyGroup(name="iotsphere")

    @group.command()
    def crash() -> None:
        raise KeyError("a bug")

    assert isinstance(CliRunner().invoke(group, ["crash"]).exception, KeyError)


def test_a_misconfigured_environment_is_the_servers_503_naming_the_variable(
    db, http: httpx.Client, monkeypatch
) -> None:
    viewer = auth(key_per_role(db)[Role.VIEWER])
    monkeypatch.setenv("IOTSPHERE_DEPLOYMENT_DEADLINE_S", "soon")  # read when the request needs the default deadline

    response = http.get("/api/deployments", headers=viewer)

    assert response.status_code == 503 and "IOTSPHERE_DEPLOYMENT_DEADLINE_S" in response.json()["detail"]
