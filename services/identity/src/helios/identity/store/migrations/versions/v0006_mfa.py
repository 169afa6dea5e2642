"""Second factors: TOTP, backup codes, e-mail OTPs, sign-in challenges, remembered devices."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

from helios.kernel.migrations import grant_statements

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

S = "identity"


def _user_id(*, primary_key: bool = False) -> sa.Column[object]:
    return sa.Column(
        "user_id",
        sa.Uuid,
        sa.ForeignKey(f"{S}.users.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "sign_in_challenges",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
        _user_id(),
        sa.Column("first_factor", sa.String(32), nullable=False),
        sa.Column("methods", ARRAY(sa.String(32)), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("user_agent", sa.String(512), nullable=False, server_default=""),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index("ix_sign_in_challenges_user_id", "sign_in_challenges", ["user_id"], schema=S)
    op.create_table(
        "email_otps",
        sa.Column(
            "challenge_id",
            sa.Uuid,
            sa.ForeignKey(f"{S}.sign_in_challenges.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("code_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sends", sa.Integer, nullable=False, server_default="1"),
        schema=S,
    )
    op.create_table(
        "totp_credentials",
        _user_id(primary_key=True),
        sa.Column("secret", sa.LargeBinary),
        sa.Column("pending_secret", sa.LargeBinary),
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_step", sa.BigInteger),
        schema=S,
    )
    op.create_table(
        "backup_codes",
        _user_id(primary_key=True),
        sa.Column("code_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_table(
        "remembered_devices",
        sa.Column("id", sa.Uuid, primary_key=True),
        _user_id(),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("user_agent", sa.String(512), nullable=False, server_default=""),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_ip", sa.String(64)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index("ix_remembered_devices_user_id", "remembered_devices", ["user_id"], schema=S)
    for statement in grant_statements(S, "helios_identity"):
        op.execute(statement)


def downgrade() -> None:
    for table in (
        "remembered_devices",
        "backup_codes",
        "totp_credentials",
        "email_otps",
        "sign_in_challenges",
    ):
        op.drop_table(table, schema=S)
