"""API keys for machine callers, stored as hashes."""

from alembic import op

from helios.kernel.migrations import grant_statements

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

S = "identity"


def upgrade() -> None:
    for statement in grant_statements(S, "helios_identity"):
        op.execute(statement)


def downgrade() -> None:
    pass
