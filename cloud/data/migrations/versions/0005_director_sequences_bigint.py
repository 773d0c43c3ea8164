"""director, fleet: director sequences as 64-bit integers on PostgreSQL. The cloud issues sequences up to 2**53 - 1
(``cloud.releases.director.MAX_SAFE_INT``) and gateways report them back; PostgreSQL's INTEGER holds 2**31 - 1.
SQLite's INTEGER is 64-bit already: nothing changes there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = (
    ("director_documents", "sequence"),
    ("director_issued", "sequence"),
    ("gateways", "director_sequence"),
    ("gateway_events", "director_sequence"),
    ("security_events", "director_sequence"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger())
