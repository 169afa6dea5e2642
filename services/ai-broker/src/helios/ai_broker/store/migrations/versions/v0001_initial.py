"""The outbox and the least-privilege service role of the ai_broker schema."""

from alembic import op

from helios.kernel.migrations import create_outbox, grant_statements

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S = "ai_broker"


def upgrade() -> None:
    create_outbox(S)
    for statement in grant_statements(S, "helios_ai_broker"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("outbox", schema=S)
