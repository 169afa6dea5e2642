"""Push 2FA: devices with their Ed25519 public keys and push challenges (A3)."""

from alembic import op

from helios.kernel.migrations import grant_statements

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

S = "identity"


def upgrade() -> None:
    for statement in grant_statements(S, "helios_identity"):
        op.execute(statement)


def downgrade() -> None:
    pass
