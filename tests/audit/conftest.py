"""The API fixtures (a cloud data folder, real HTTP, one key per role) and a prediction to act on."""

from __future__ import annotations

import pytest
import sqlite_utils

from shared.messages import Prediction
from tests.api import seed
from tests.api.conftest import base_url, config, db, http, tokens  # noqa: F401  (fixtures)
from tests.releases.conftest import onnx_models  # noqa: F401  (fixture)
from tests.rollouts.conftest import cloud, released  # noqa: F401  (fixtures: a released model on ten gateways)


@pytest.fixture
def prediction(db: sqlite_utils.Database) -> Prediction:  # noqa: F811
    seed.device(db, "wh-1")
    return seed.prediction(db, "wh-1")
