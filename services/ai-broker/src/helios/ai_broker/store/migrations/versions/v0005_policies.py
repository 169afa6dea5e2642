"""Orgs' AI policies, and whether a parked invocation needs a step-up to be confirmed (I3)."""

import sqlalchemy as sa
from alembic import op

from helios.kernel.migrations import grant_statements

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

S = "ai_broker"


def upgrade() -> None:
    op.create_table(
        "ai_policies",
        sa.Column("org_id", sa.Uuid, primary_key=True),
        sa.Column("require_step_up_to_confirm", sa.Boolean, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        schema=S,
    )
    op.add_column(
        "invocations",
        sa.Column("step_up_required", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=S,
    )
    for statement in grant_statements(S, "helios_ai_broker"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_column("invocations", "step_up_required", schema=S)
    op.drop_table("ai_policies", schema=S)
