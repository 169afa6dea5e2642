"""Sign-in throttling shared by every replica: failures per key in a sliding window, lockouts."""

import sqlalchemy as sa
from alembic import op

from helios.kernel.migrations import grant_statements

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "identity"


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index(
        "ix_sign_in_failures_key_failed_at",
        "sign_in_failures",
        ["key", "failed_at"],
        schema=S,
    )
    op.create_table(
        "sign_in_lockouts",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    for statement in grant_statements(S, "helios_identity"):
        op.execute(statement)


def downgrade() -> None:
    for table in ("sign_in_lockouts", "sign_in_failures"):
        op.drop_table(table, schema=S)
