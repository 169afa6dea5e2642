"""Rotation schedule per key: its period and the next rotation time."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "keyvault"


def upgrade() -> None:
    op.add_column("keys", sa.Column("rotation_period_seconds", sa.Integer), schema=S)
    op.add_column("keys", sa.Column("next_rotation_at", sa.DateTime(timezone=True)), schema=S)
    op.create_index(
        "keys_rotation_due",
        "keys",
        ["next_rotation_at"],
        schema=S,
        postgresql_where=sa.text("destroyed_at IS NULL AND next_rotation_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("keys_rotation_due", "keys", schema=S)
    op.drop_column("keys", "next_rotation_at", schema=S)
    op.drop_column("keys", "rotation_period_seconds", schema=S)
