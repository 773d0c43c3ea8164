"""What a route gets through FastAPI's ``Depends``: the request's database, the caller, the signer and the services.

Routes name what they need as a parameter type (``db: Database``, ``key: Operator``, ``registry: Registry``) and
build nothing themselves, so every route gets the same service the same way and a test or a new route has one
place to look.

The database: one SQLite connection per request, so worker threads never share one. ``create_app`` opens the file
once with ``cloud.storage.open_database`` (creating and migrating it); after that a request only needs a plain
connection (~0.1 ms, against ~1 ms to re-run the migration check). WAL mode, set by ``open_database``, is a property
of the file, so these connections read while ingest writes. They never create the file: a database that vanished
is Unavailable (503), not an empty database answering "unknown device" for everything.

The caller: ``require_role`` authenticates the key (``Authorization: Bearer <key>`` or ``X-API-Key: <key>``) and
checks its role: 401 for a missing, unknown or revoked key, 403 for a role too low. ``cloud.api.auth`` checks
that every route declares one, and documents it.

The signer: the API process holds the signing keys' passphrase in ``IOTSPHERE_KEY_PASSPHRASE``, read through
``cloud.config.key_passphrase`` when a request needs it; a route that signs without it is Unavailable (503), one
that only reads never asks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import OperationalError

from cloud import storage
from cloud.api.keys import ApiKey, KeyRejected, KeyStore
from cloud.api.roles import Role, permits
from cloud.config import PASSPHRASE_ENV, CloudConfig, key_passphrase
from cloud.data.connections import Database as DatabaseHandle
from cloud.errors import Unavailable
from cloud.experiments.service import ExperimentService
from cloud.feature_store import FeatureStore
from cloud.feedback import PredictionFeedbackService
from cloud.monitoring.performance import ModelPerformanceMonitor
from cloud.pipeline.training import ModelTrainingPipeline
from cloud.registry import MLModelRegistry
from cloud.releases.service import ReleaseService
from cloud.retraining.service import RetrainingService
from cloud.rollouts.engine import StagedRollouts


def app_config(request: Request) -> CloudConfig:
    return request.app.state.config


def request_database(config: Annotated[CloudConfig, Depends(app_config)]) -> Iterator[DatabaseHandle]:
    """A connection for this request, closed when the response is done."""
    try:
        db = storage.connect(config.database_url)
    except (sqlite3.Error, OperationalError) as exc:
        raise Unavailable(f"database unavailable: {exc}") from exc
    try:
        yield db
    finally:
        db.close()


Config = Annotated[CloudConfig, Depends(app_config)]
Database = Annotated[DatabaseHandle, Depends(request_database)]

# -- the caller: its API key, once its role is checked (401/403 otherwise); ``key.actor`` is who the audit names

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: <API key>`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers=_CHALLENGE)


def _presented_token(bearer: HTTPAuthorizationCredentials | None, header_key: str | None) -> str:
    tokens = {token for token in (bearer.credentials if bearer else None, header_key) if token}
    if not tokens:
        raise _unauthorized("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    if len(tokens) > 1:
        raise _unauthorized("two different API keys in Authorization and X-API-Key: send one")
    return tokens.pop()


@cache  # one dependency per role, so a router's and a route's declaration of it authenticate the key once
def require_role(required: Role) -> Callable[..., ApiKey]:
    """A dependency admitting keys whose role permits ``required``; it returns the caller's key."""

    def check_role(
        request: Request,
        db: Database,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        header_key: Annotated[str | None, Security(_api_key_header)],
    ) -> ApiKey:
        try:
            key = KeyStore(db).authenticate(_presented_token(bearer, header_key))
        except KeyRejected as exc:
            raise _unauthorized(str(exc)) from exc
        request.state.api_key = key  # the audit log's actor, refused requests included (cloud.api.app)
        if not permits(key.role, required):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this route needs the {required.value} role; API key {key.key_id} has {key.role.value}",
            )
        return key

    check_role.required_role = required  # type: ignore[attr-defined]
    return check_role


def require_admin_to_override(key: ApiKey, override: bool) -> None:
    """Letting a version that failed evaluation through is an admin's decision, for promotions and rollbacks."""
    if override and key.role != Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="overriding a failed evaluation needs the admin role")


Viewer = Annotated[ApiKey, Depends(require_role(Role.VIEWER))]
Technician = Annotated[ApiKey, Depends(require_role(Role.TECHNICIAN))]
Operator = Annotated[ApiKey, Depends(require_role(Role.OPERATOR))]
Admin = Annotated[ApiKey, Depends(require_role(Role.ADMIN))]


# -- the signer


@dataclass(frozen=True)
class Signer:
    """The keystore of ``config.keys_dir`` and the passphrase the API holds, asked for only when something is signed."""

    config: CloudConfig
    held_passphrase: str | None

    def passphrase(self) -> str:
        if not self.held_passphrase:
            raise Unavailable(f"the API cannot sign: set {PASSPHRASE_ENV} in the environment of the API process")
        return self.held_passphrase

    def releases(self) -> ReleaseService:
        """The release service, which signs and sends director documents for promotions, rollouts, experiments."""
        return ReleaseService(self.config, self.passphrase())


def request_signer(config: Config) -> Signer:
    return Signer(config, key_passphrase())


SignerDep = Annotated[Signer, Depends(request_signer)]


# -- the services, each over the request's connection


def _registry(db: Database, config: Config) -> MLModelRegistry:
    return MLModelRegistry(db, config)


def _features(db: Database) -> FeatureStore:
    return FeatureStore(db)


def _feedback(db: Database) -> PredictionFeedbackService:
    return PredictionFeedbackService(db)


def _monitor(db: Database) -> ModelPerformanceMonitor:
    return ModelPerformanceMonitor(db)


def _keys(db: Database) -> KeyStore:
    return KeyStore(db)


def _pipeline(config: Config, db: Database) -> ModelTrainingPipeline:
    return ModelTrainingPipeline(db, config)


def _retraining(config: Config, db: Database) -> RetrainingService:
    return RetrainingService(db, config)


def _rollouts(config: Config, db: Database) -> StagedRollouts:
    return StagedRollouts(config, db)


def _signing_rollouts(config: Config, db: Database, signer: SignerDep) -> StagedRollouts:
    return StagedRollouts(config, db, signer.passphrase())


def _experiments(config: Config, db: Database) -> ExperimentService:
    return ExperimentService(db, config, MLModelRegistry(db), None)


def _signing_experiments(config: Config, db: Database, signer: SignerDep) -> ExperimentService:
    return ExperimentService(db, config, MLModelRegistry(db), signer.releases())


Registry = Annotated[MLModelRegistry, Depends(_registry)]
Features = Annotated[FeatureStore, Depends(_features)]
Feedback = Annotated[PredictionFeedbackService, Depends(_feedback)]
Monitor = Annotated[ModelPerformanceMonitor, Depends(_monitor)]
Keys = Annotated[KeyStore, Depends(_keys)]
Pipeline = Annotated[ModelTrainingPipeline, Depends(_pipeline)]
Retraining = Annotated[RetrainingService, Depends(_retraining)]
#: rollouts to read, halt, resume or cancel: nothing signed
Rollouts = Annotated[StagedRollouts, Depends(_rollouts)]
#: rollouts to start, advance or roll back: director documents are signed (503 without the passphrase)
SigningRollouts = Annotated[StagedRollouts, Depends(_signing_rollouts)]
#: experiments to create, list and watch: nothing signed
Experiments = Annotated[ExperimentService, Depends(_experiments)]
#: experiments to start, stop and conclude: director documents are signed (503 without the passphrase)
SigningExperiments = Annotated[ExperimentService, Depends(_signing_experiments)]
