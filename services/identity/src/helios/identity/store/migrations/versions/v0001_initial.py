"""Users, sessions, orgs, memberships and the outbox; the least-privilege service role."""

import sqlalchemy as sa
from alembic import op

from helios.kernel.migrations import create_outbox, grant_statements

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S = "identity"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("email_verified_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index("users_email_key", "users", [sa.text("lower(email)")], unique=True, schema=S)
    op.create_table(
        "sessions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "user_id", sa.Uuid, sa.ForeignKey(f"{S}.users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("org_id", sa.Uuid),
        sa.Column("ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("user_agent", sa.String(512), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"], schema=S)
    op.create_table(
        "orgs",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("slug", sa.String(63), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_table(
        "memberships",
        sa.Column(
            "org_id", sa.Uuid, sa.ForeignKey(f"{S}.orgs.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "user_id", sa.Uuid, sa.ForeignKey(f"{S}.users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("user_type", sa.String(63), nullable=False),
        sa.Column(
            "joined_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=S,
    )
    create_outbox(S)
    for statement in grant_statements(S, "helios_identity"):
        op.execute(statement)


def downgrade() -> None:
    for table in ("outbox", "memberships", "orgs", "sessions", "users"):
        op.drop_table(table, schema=S)
