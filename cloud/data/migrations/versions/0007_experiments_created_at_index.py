"""experiments: the Experiments page pages them newest first by (created_at, experiment_id) (issue 12): this index
is that order, so a page is one index range from its cursor instead of a sort of every experiment.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("idx_experiments_created_at_id", "experiments", ["created_at", "experiment_id"])


def downgrade() -> None:
    op.drop_index("idx_experiments_created_at_id", table_name="experiments")
