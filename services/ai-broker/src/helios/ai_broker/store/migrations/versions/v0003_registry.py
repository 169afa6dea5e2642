"""The action registry (I5)."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from helios.kernel.migrations import grant_statements

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "ai_broker"


def upgrade() -> None:
    op.create_table(
        "actions",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("description", sa.String(300), nullable=False),
        sa.Column("permission", sa.String(200), nullable=False),
        sa.Column("input_schema", JSONB, nullable=False),
        sa.Column("target_method", sa.String(300), nullable=False),
        sa.Column("ai_allowed", sa.Boolean, nullable=False),
        sa.Column("summary_template", sa.String(500), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index("ix_actions_service", "actions", ["service"], schema=S)
    for statement in grant_statements(S, "helios_ai_broker"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("actions", schema=S)
