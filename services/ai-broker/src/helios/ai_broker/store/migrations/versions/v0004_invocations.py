"""Invocations and their parked confirmations (I3, I4)."""

import sqlalchemy as sa
from alembic import op

from helios.kernel.migrations import grant_statements

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "ai_broker"


def upgrade() -> None:
    op.create_table(
        "invocations",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("ai_session_id", sa.Uuid, sa.ForeignKey(f"{S}.ai_sessions.id"), nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("action", sa.String(200), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("input_json", sa.Text, nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("output_json", sa.Text),
        sa.Column("output_hash", sa.String(64), nullable=False, server_default=""),
        sa.Column("dangerous", sa.Boolean, nullable=False),
        sa.Column("decision_id", sa.String(64), nullable=False),
        sa.Column("confirmation_hash", sa.LargeBinary(32)),
        sa.Column("confirmation_expires_at", sa.DateTime(timezone=True)),
        sa.Column("summary", sa.Text, nullable=False, server_default=""),
        sa.Column("system_prompt_hash", sa.String(64), nullable=False, server_default=""),
        sa.Column("decided_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("error_code", sa.String(64), nullable=False, server_default=""),
        sa.Column("error_message", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "state IN ('pending_confirmation', 'running', 'succeeded', 'failed', 'rejected',"
            " 'expired')",
            name="ck_invocations_state",
        ),
        schema=S,
    )
    op.create_index(
        "ix_invocations_session_created",
        "invocations",
        ["ai_session_id", "created_at"],
        schema=S,
    )
    for statement in grant_statements(S, "helios_ai_broker"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("invocations", schema=S)
