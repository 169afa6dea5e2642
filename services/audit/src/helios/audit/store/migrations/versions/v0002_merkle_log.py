"""The per-org Merkle log: leaf index and hash on every row, perfect-subtree nodes, log sizes,
signed checkpoints; existing rows are backfilled in order."""

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

from helios.audit.domain import merkle
from helios.audit.domain.leaf import leaf_bytes
from helios.audit.store.rows import leaf_record
from helios.kernel.migrations import grant_statements

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "audit"


def _backfill() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text(f'SELECT * FROM "{S}".audit_log ORDER BY seq')).mappings().all()  # noqa: S608 - constant schema
    sizes: dict[str, int] = defaultdict(int)
    nodes: dict[str, dict[merkle.NodeRef, bytes]] = defaultdict(dict)
    for row in rows:
        org = row["org_id"]
        index = sizes[org]
        leaf = merkle.leaf_hash(leaf_bytes(leaf_record(dict(row), index)))
        known = nodes[org]
        border = {ref: known[ref] for ref in merkle.border(index)}
        for ref, value in merkle.appended_nodes(index, [leaf], border):
            known[ref] = value
        bind.execute(
            sa.text(
                f'UPDATE "{S}".audit_log SET org_seq = :index, leaf_hash = :leaf WHERE seq = :seq'  # noqa: S608
            ),
            {"index": index, "leaf": leaf, "seq": row["seq"]},
        )
        sizes[org] = index + 1
    for org, size in sizes.items():
        bind.execute(
            sa.text(f'INSERT INTO "{S}".org_logs (org_id, size) VALUES (:org, :size)'),  # noqa: S608
            {"org": org, "size": size},
        )
        params: list[dict[str, Any]] = [
            {"org": org, "level": level, "idx": idx, "hash": value}
            for (level, idx), value in nodes[org].items()
        ]
        if params:
            bind.execute(
                sa.text(
                    f'INSERT INTO "{S}".merkle_nodes (org_id, level, idx, hash)'  # noqa: S608
                    " VALUES (:org, :level, :idx, :hash)"
                ),
                params,
            )


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("org_seq", sa.BigInteger), schema=S)
    op.add_column("audit_log", sa.Column("leaf_hash", sa.LargeBinary), schema=S)
    op.create_table(
        "org_logs",
        sa.Column("org_id", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        schema=S,
    )
    op.create_table(
        "merkle_nodes",
        sa.Column("org_id", sa.String(64), primary_key=True),
        sa.Column("level", sa.SmallInteger, primary_key=True),
        sa.Column("idx", sa.BigInteger, primary_key=True),
        sa.Column("hash", sa.LargeBinary, nullable=False),
        schema=S,
    )
    op.create_table(
        "checkpoints",
        sa.Column("org_id", sa.String(64), primary_key=True),
        sa.Column("tree_size", sa.BigInteger, primary_key=True),
        sa.Column("root_hash", sa.LargeBinary, nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("previous_size", sa.BigInteger, nullable=False),
        sa.Column("previous_root_hash", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(200), nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        schema=S,
    )
    op.execute(f'ALTER TABLE "{S}".audit_log DISABLE TRIGGER audit_log_append_only')
    _backfill()
    op.execute(f'ALTER TABLE "{S}".audit_log ENABLE TRIGGER audit_log_append_only')
    op.alter_column("audit_log", "org_seq", nullable=False, schema=S)
    op.alter_column("audit_log", "leaf_hash", nullable=False, schema=S)
    op.create_unique_constraint("audit_log_org_seq", "audit_log", ["org_id", "org_seq"], schema=S)
    for statement in grant_statements(
        S,
        "helios_audit",
        read_only_tables=("audit_log", "dead_letters", "merkle_nodes", "checkpoints"),
    ):
        op.execute(statement)


def downgrade() -> None:
    for table in ("checkpoints", "merkle_nodes", "org_logs"):
        op.drop_table(table, schema=S)
    op.drop_constraint("audit_log_org_seq", "audit_log", schema=S)
    op.drop_column("audit_log", "leaf_hash", schema=S)
    op.drop_column("audit_log", "org_seq", schema=S)
