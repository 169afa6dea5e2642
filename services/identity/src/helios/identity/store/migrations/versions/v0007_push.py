"""Push 2FA: devices with their Ed25519 public keys and push challenges (A3)."""

import sqlalchemy as sa
from alembic import op

from helios.kernel.migrations import grant_statements

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

S = "identity"


def _at(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "push_devices",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "user_id", sa.Uuid, sa.ForeignKey(f"{S}.users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        _at("created_at", nullable=False),
        _at("last_used_at"),
        schema=S,
    )
    op.create_index(
        "push_devices_user_key", "push_devices", ["user_id", "public_key"], unique=True, schema=S
    )
    op.create_table(
        "push_challenges",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "sign_in_challenge_id",
            sa.Uuid,
            sa.ForeignKey(f"{S}.sign_in_challenges.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "user_id", sa.Uuid, sa.ForeignKey(f"{S}.users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("nonce", sa.LargeBinary(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _at("created_at", nullable=False),
        _at("expires_at", nullable=False),
        sa.Column("ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("user_agent", sa.String(512), nullable=False, server_default=""),
        sa.Column("city", sa.String(100), nullable=False, server_default=""),
        sa.Column("country", sa.String(8), nullable=False, server_default=""),
        _at("answered_at"),
        sa.Column("device_id", sa.Uuid, sa.ForeignKey(f"{S}.push_devices.id", ondelete="SET NULL")),
        _at("consumed_at"),
        schema=S,
    )
    op.create_index(
        "push_challenges_one_pending",
        "push_challenges",
        ["sign_in_challenge_id"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_push_challenges_user_state", "push_challenges", ["user_id", "state"], schema=S
    )
    for statement in grant_statements(S, "helios_identity"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("push_challenges", schema=S)
    op.drop_table("push_devices", schema=S)
