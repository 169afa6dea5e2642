"""Magic links, login history and known devices (A8, S4, S5)."""

from alembic import op

from helios.kernel.migrations import grant_statements

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

S = "identity"


def upgrade() -> None:
    for statement in grant_statements(S, "helios_identity"):
        op.execute(statement)


def downgrade() -> None:
    pass
