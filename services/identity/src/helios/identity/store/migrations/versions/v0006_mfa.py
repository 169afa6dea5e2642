"""Second factors: TOTP, backup codes, e-mail OTPs, sign-in challenges, remembered devices."""

from alembic import op

from helios.kernel.migrations import grant_statements

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

S = "identity"


def upgrade() -> None:
    for statement in grant_statements(S, "helios_identity"):
        op.execute(statement)


def downgrade() -> None:
    pass
