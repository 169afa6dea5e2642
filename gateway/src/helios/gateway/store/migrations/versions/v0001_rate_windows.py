"""Shared rate-limit counters and the gateway's least-privilege role."""

import sqlalchemy as sa
from alembic import op

from helios.kernel.migrations import grant_statements

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S = "gateway"


def upgrade() -> None:
    op.create_table(
        "rate_windows",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("hits", sa.Integer, nullable=False),
        schema=S,
    )
    op.create_index("rate_windows_start", "rate_windows", ["window_start"], schema=S)
    for statement in grant_statements(S, "helios_gateway"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("rate_windows", schema=S)
