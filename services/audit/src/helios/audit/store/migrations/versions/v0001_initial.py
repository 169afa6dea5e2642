"""The append-only audit log (UPDATE/DELETE refused by trigger), dead letters, outbox, role."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from helios.kernel.migrations import create_outbox, grant_statements

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S = "audit"


def _text(name: str, length: int) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=False, server_default="")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        _text("org_id", 64),
        sa.Column("actor_type", sa.String(16), nullable=False),
        _text("actor_id", 64),
        _text("session_id", 64),
        _text("impersonator_id", 64),
        sa.Column("action", sa.String(200), nullable=False),
        _text("resource_type", 200),
        _text("resource_id", 200),
        _text("input_hash", 64),
        _text("output_hash", 64),
        _text("ip", 64),
        _text("user_agent", 512),
        sa.Column("diff", JSONB, nullable=False, server_default="{}"),
        _text("decision_id", 64),
        _text("trace_id", 32),
        _text("producer", 64),
        sa.Column("outcome", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("stream_seq", sa.BigInteger, nullable=False),
        schema=S,
    )
    op.create_index("audit_log_actor", "audit_log", ["actor_id", "seq"], schema=S)
    op.create_index("audit_log_org", "audit_log", ["org_id", "seq"], schema=S)
    op.execute(
        f"""
        CREATE FUNCTION "{S}".refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        f'CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON "{S}".audit_log '
        f'FOR EACH ROW EXECUTE FUNCTION "{S}".refuse_change()'
    )
    op.execute(
        f'CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON "{S}".audit_log '
        f'FOR EACH STATEMENT EXECUTE FUNCTION "{S}".refuse_change()'
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("stream_seq", sa.BigInteger, nullable=False, unique=True),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("deliveries", sa.Integer, nullable=False, server_default="1"),
        schema=S,
    )
    create_outbox(S)
    for statement in grant_statements(
        S, "helios_audit", read_only_tables=("audit_log", "dead_letters")
    ):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("outbox", schema=S)
    op.drop_table("dead_letters", schema=S)
    op.drop_table("audit_log", schema=S)
    op.execute(f'DROP FUNCTION "{S}".refuse_change()')
