"""Outbound mail outbox: written with the state change, sent (DKIM-signed) by mail/sender.py.

Bodies may hold one-time links: the sender blanks `body_text` as soon as a message is sent or
given up, so a sent row keeps only its envelope (recipient, subject, Message-ID, times)."""

import sqlalchemy as sa
from alembic import op

from helios.kernel.migrations import grant_statements

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "identity"


def upgrade() -> None:
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("to_address", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body_text", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("attempts", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.String(500)),
        sa.Column("message_id", sa.String(255)),
        schema=S,
    )
    op.create_index(
        "mail_outbox_due",
        "mail_outbox",
        ["next_attempt_at"],
        schema=S,
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    # SELECT, INSERT, UPDATE (claim, mark sent, blank the body) and DELETE for the identity role.
    for statement in grant_statements(S, "helios_identity"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("mail_outbox", schema=S)
