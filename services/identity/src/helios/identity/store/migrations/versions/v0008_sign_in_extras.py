"""Magic links, login history and known devices (A8, S4, S5). Magic links need no table of their
own: they are `email_tokens` of purpose "magic_link"."""

import sqlalchemy as sa
from alembic import op

from helios.kernel.migrations import grant_statements

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

S = "identity"


def upgrade() -> None:
    op.create_table(
        "login_events",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "user_id",
            sa.Uuid,
            sa.ForeignKey(f"{S}.users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("city", sa.String(100), nullable=False, server_default=""),
        sa.Column("country", sa.String(2), nullable=False, server_default=""),
        sa.Column("user_agent", sa.String(512), nullable=False, server_default=""),
        sa.Column("device_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("failure_reason", sa.String(64), nullable=False, server_default=""),
        schema=S,
    )
    op.create_index(
        "ix_login_events_user_time",
        "login_events",
        ["user_id", "occurred_at", "id"],
        schema=S,
    )
    op.create_index("ix_login_events_time", "login_events", ["occurred_at"], schema=S)
    op.create_table(
        "known_devices",
        sa.Column(
            "user_id",
            sa.Uuid,
            sa.ForeignKey(f"{S}.users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("browser", sa.String(100), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("city", sa.String(100), nullable=False, server_default=""),
        sa.Column("country", sa.String(2), nullable=False, server_default=""),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    for statement in grant_statements(S, "helios_identity"):
        op.execute(statement)


def downgrade() -> None:
    for table in ("known_devices", "login_events"):
        op.drop_table(table, schema=S)
