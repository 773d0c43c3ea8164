"""The cloud's FastAPI application: read access to the fleet, models and predictions, and TUF downloads."""

from __future__ import annotations

from fastapi import FastAPI

from cloud.api.auth import document_roles, route_roles
from cloud.api.keys import KeyStore
from cloud.api.routes import (
    admin,
    dead_letters,
    features,
    feedback,
    gateways,
    health,
    models,
    predictions,
    registry,
    tuf,
)
from cloud.config import CloudConfig
from cloud.storage import open_database

_TAGS = [
    {"name": "health", "description": "Is the API up and its database readable."},
    {"name": "predictions", "description": "Predictions gateways made for water heaters."},
    {"name": "feedback", "description": "Outcomes and ratings of predictions."},
    {"name": "features", "description": "Feature history of water heaters and recorded training datasets."},
    {"name": "models", "description": "Registered models and their versions."},
    {"name": "gateways", "description": "Gateways' status and update events."},
    {"name": "operations", "description": "What ingest could not store."},
    {"name": "admin", "description": "API keys."},
    {"name": "tuf", "description": "The signed TUF repository gateways update from."},
]

_DESCRIPTION = """
Every route needs an API key (`Authorization: Bearer <key>` or `X-API-Key: <key>`) except the
health check. Roles: `viewer` < `technician` < `operator` < `admin`, each including the ones before;
`gateway` keys (one per gateway) open only the TUF routes. Create keys with `iotsphere admin create-key`.
"""


def create_app(config: CloudConfig) -> FastAPI:
    """The app over ``config``'s database (created and migrated here) and TUF repository."""
    db = open_database(config.database_path)
    try:
        KeyStore(db)  # prepares the key table before requests arrive
    finally:
        db.conn.close()
    app = FastAPI(title="IoTSphere MLOps API", version="1", description=_DESCRIPTION, openapi_tags=_TAGS)
    app.state.config = config
    roles = {}
    for module in (health, predictions, feedback, registry, models, gateways, dead_letters, admin, tuf, features):
        roles |= route_roles(module.router)
        app.include_router(module.router)
    document_roles(app, roles)
    return app
