"""``GET /api/health``: is the API up and can it read its database."""

from __future__ import annotations

import sqlite3

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError

from cloud.api.auth import public
from cloud.api.deps import Config
from cloud.data.connections import connection_of
from cloud.data.schema import legacy_steps, revision
from cloud.storage import connect

router = APIRouter(tags=["health"], dependencies=[Depends(public)])


class Health(BaseModel):
    status: str
    database_ok: bool
    #: highest legacy step recorded (21 on every database since the data layer), None when it cannot be read
    schema_version: int | None
    #: the Alembic revision the database is at, None when it cannot be read
    revision: str | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ok", "database_ok": True, "schema_version": 21, "revision": "0004"}]
        }
    )


@router.get(
    "/api/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database cannot be read."}},
)
def health(config: Config, response: Response) -> Health:
    """Liveness and database readability, for load balancers and `make demo`; 503 when the database fails."""
    try:
        db = connect(config.database_url)
        try:
            connection = connection_of(db)
            schema_version = max(legacy_steps(connection), default=None)
            current = revision(connection)
        finally:
            db.close()
    except (sqlite3.Error, DBAPIError):
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="unavailable", database_ok=False, schema_version=None)
    return Health(status="ok", database_ok=True, schema_version=schema_version, revision=current)
