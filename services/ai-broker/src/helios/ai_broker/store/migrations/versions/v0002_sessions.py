"""AI sessions (I1) and their per-minute rate windows."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

from helios.kernel.migrations import grant_statements

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "ai_broker"


def upgrade() -> None:
    op.create_table(
        "ai_sessions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("purpose", sa.String(500), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("token_prefix", sa.String(16), nullable=False),
        sa.Column("permissions", ARRAY(sa.String(200)), nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index(
        "ix_ai_sessions_user_created",
        "ai_sessions",
        ["org_id", "user_id", "created_at"],
        schema=S,
    )
    op.create_table(
        "ai_rate_windows",
        sa.Column(
            "session_id",
            sa.Uuid,
            sa.ForeignKey(f"{S}.ai_sessions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        schema=S,
    )
    for statement in grant_statements(S, "helios_ai_broker"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("ai_rate_windows", schema=S)
    op.drop_table("ai_sessions", schema=S)
