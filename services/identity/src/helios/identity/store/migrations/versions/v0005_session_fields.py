"""Sessions record how they were opened, their last request and an impersonator; orgs carry a
sign-in policy (2FA required, magic links allowed)."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

S = "identity"


def upgrade() -> None:
    op.add_column(
        "sessions",
        sa.Column("method", sa.String(32), nullable=False, server_default="password"),
        schema=S,
    )
    op.add_column("sessions", sa.Column("impersonator_id", sa.Uuid), schema=S)
    op.add_column("sessions", sa.Column("last_seen_at", sa.DateTime(timezone=True)), schema=S)
    op.add_column(
        "orgs",
        sa.Column("require_mfa", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=S,
    )
    op.add_column(
        "orgs",
        sa.Column("magic_link_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=S,
    )


def downgrade() -> None:
    for column in ("method", "impersonator_id", "last_seen_at"):
        op.drop_column("sessions", column, schema=S)
    for column in ("require_mfa", "magic_link_enabled"):
        op.drop_column("orgs", column, schema=S)
