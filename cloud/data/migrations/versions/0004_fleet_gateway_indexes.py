"""fleet: a gateway's devices and its technicians' outcomes found by gateway, and the gateways counted by state from
a small covering index, for the Fleet and Gateway pages at 100,000 gateways (issue 12): without them each page scans
every device and every outcome, and each count reads every gateway's stored status.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("idx_gateways_last_seen_online", "gateways", ["last_seen", "online"])
    op.create_index("idx_devices_gateway_id", "devices", ["gateway_id"])
    op.create_index("idx_outcomes_gateway_id_observed_at", "outcomes", ["gateway_id", "observed_at"])


def downgrade() -> None:
    op.drop_index("idx_outcomes_gateway_id_observed_at", table_name="outcomes")
    op.drop_index("idx_devices_gateway_id", table_name="devices")
    op.drop_index("idx_gateways_last_seen_online", table_name="gateways")
