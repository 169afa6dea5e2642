"""Keys, key versions with sealed material and use counters, the outbox, the service role."""

import sqlalchemy as sa
from alembic import op

from helios.kernel.migrations import create_outbox, grant_statements

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S = "keyvault"


def upgrade() -> None:
    op.create_table(
        "keys",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("purpose", sa.SmallInteger, nullable=False),
        sa.Column("algorithm", sa.SmallInteger, nullable=False),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("min_decryption_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("org_id", "name", name="keys_org_name"),
        schema=S,
    )
    op.create_table(
        "key_versions",
        sa.Column(
            "key_id", sa.Uuid, sa.ForeignKey(f"{S}.keys.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("sealed_material", sa.LargeBinary),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True)),
        sa.Column("use_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("live_ciphertexts", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("live_data_keys", sa.BigInteger, nullable=False, server_default="0"),
        schema=S,
    )
    create_outbox(S)
    for statement in grant_statements(S, "helios_keyvault"):
        op.execute(statement)


def downgrade() -> None:
    for table in ("outbox", "key_versions", "keys"):
        op.drop_table(table, schema=S)
