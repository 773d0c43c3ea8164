"""gateway_events: deriving deployment states (``cloud.data.director.deployment_rows``) looks up, per gateway and
model, its latest event of a kind; this index makes each lookup one range of that gateway's events of that kind
about that model, by time, instead of a walk through every event of the gateway.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "idx_gateway_events_gateway_kind_model", "gateway_events", ["gateway_id", "kind", "model_name", "sent_at"]
    )


def downgrade() -> None:
    op.drop_index("idx_gateway_events_gateway_kind_model", table_name="gateway_events")
