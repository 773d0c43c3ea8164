"""schemathesis against the API's own OpenAPI document, over real HTTP, with an admin key: no 5xx, no answer the
document does not describe.

Every operation gets schema-valid and schema-violating requests (its examples, then generated ones; the coverage
phase adds boundary values, missing parameters and undeclared methods such as OPTIONS). The data folder is set up
as a running cloud has it (TUF keys, the passphrase in the environment, a gateway, a heater with predictions, a
production and a staging model version under the ids the examples use), so requests reach data and promotions,
rollouts and experiments run their real checks instead of stopping at a missing passphrase or a 404. Left out:

- ``positive_data_acceptance``: rules JSON Schema cannot state (a start before its end, an outcome with a result
  or a value, a model version that exists, a known feature name) refuse schema-valid requests with 400/422 by
  design;
- the admin key routes (``/api/admin/keys``: revoking or rotating keys): the run's own admin key would be the
  first casualty. ``tests/api/test_keys.py`` covers them.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import sqlite_utils
from hypothesis import HealthCheck, settings
from schemathesis import checks

from cloud.api.app import create_app
from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.config import PASSPHRASE_ENV, CloudConfig
from cloud.releases import tuf_repo
from cloud.storage import open_database
from tests.api import seed
from tests.api.server import ThreadedServer

#: examples per operation and phase: ~70 operations × (examples + coverage + fuzzing) stay near a minute; `make
#: test-postgres` runs a bounded pass (IOTSPHERE_TEST_FUZZ_EXAMPLES) to keep .ci/run within its budget
MAX_EXAMPLES = int(os.environ.get("IOTSPHERE_TEST_FUZZ_EXAMPLES", "25"))
PASSPHRASE = "fuzzing passphrase"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.unsupported_method,
    checks.allow_header_conformance,
]
_examples: Counter[str] = Counter()


def _seed(db: sqlite_utils.Database) -> None:
    """Rows under the ids the document's examples use, so those requests reach data rather than a 404."""
    seed.gateway(db, "gw-001")
    seed.device(db, "wh-0042")
    seed.prediction(db, "wh-0042", prediction_id="7d0c5a6e2f1b4c3a9e8d7f6a5b4c3d2e")
    for minutes in range(1, 30):
        seed.prediction(db, "wh-0042", minutes=minutes)
    seed.model_version(db, "component_failure", "3", "production", days=1)
    seed.model_version(db, "component_failure", "4", "staging", days=2)


@pytest.fixture(scope="module")
def admin_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CloudConfig, str]]:
    config = CloudConfig(data_dir=Path(tmp_path_factory.mktemp("fuzz")) / "cloud", topic_prefix="fuzz-openapi")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PASSPHRASE_ENV, PASSPHRASE)
        tuf_repo.init_repository(config, PASSPHRASE)
        db = open_database(config.database_url)
        try:
            token = KeyStore(db).create(Role.ADMIN, "fuzz", None).token
            _seed(db)
        finally:
            db.close()
        yield config, token


@pytest.fixture(scope="module")
def served(admin_token: tuple[CloudConfig, str]) -> Iterator[str]:
    with ThreadedServer(create_app(admin_token[0])) as server:
        yield server.base_url


def _openapi() -> dict:
    """The document as the app serves it; it does not depend on the data, so a throwaway folder builds it."""
    with tempfile.TemporaryDirectory() as folder:
        return create_app(CloudConfig(data_dir=Path(folder))).openapi()


schema = schemathesis.openapi.from_dict(_openapi()).exclude(path_regex="^/api/admin/")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same requests every run: a failure here is a regression, not bad luck
    database=None,
)
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, served: str, admin_token: tuple[CloudConfig, str]
) -> None:
    _examples[case.operation.label] += 1
    case.call_and_validate(
        base_url=served, headers={"Authorization": f"Bearer {admin_token[1]}"}, checks=CHECKS, timeout=30
    )


def test_every_operation_was_fuzzed() -> None:
    """The run above reached every operation the document lists (run it with ``-s`` to see the counts)."""
    operations = {result.ok().label for result in schema.get_all_operations()}

    print(f"\nschemathesis: {sum(_examples.values())} requests over {len(_examples)} operations, none failed")
    assert operations <= set(_examples)
    assert len(operations) > 60
