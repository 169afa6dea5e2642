"""Audit's tables, all in the `audit` schema."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from helios.kernel.outbox import outbox_table

__all__ = [
    "SCHEMA",
    "audit_log",
    "checkpoints",
    "dead_letters",
    "merkle_nodes",
    "metadata",
    "org_logs",
    "org_retention",
    "outbox",
    "purges",
]

SCHEMA = "audit"
metadata = MetaData(schema=SCHEMA)

# One immutable row per state change (L1). The service role may only INSERT and SELECT, and a
# trigger refuses UPDATE and DELETE for everyone.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("org_id", String(64), nullable=False, server_default=""),
    Column("actor_type", String(16), nullable=False),
    Column("actor_id", String(64), nullable=False, server_default=""),
    Column("session_id", String(64), nullable=False, server_default=""),
    Column("impersonator_id", String(64), nullable=False, server_default=""),
    Column("action", String(200), nullable=False),
    Column("resource_type", String(200), nullable=False, server_default=""),
    Column("resource_id", String(200), nullable=False, server_default=""),
    Column("input_hash", String(64), nullable=False, server_default=""),
    Column("output_hash", String(64), nullable=False, server_default=""),
    Column("ip", String(64), nullable=False, server_default=""),
    Column("user_agent", String(512), nullable=False, server_default=""),
    Column("diff", JSONB, nullable=False, server_default="{}"),
    Column("decision_id", String(64), nullable=False, server_default=""),
    Column("trace_id", String(32), nullable=False, server_default=""),
    Column("producer", String(64), nullable=False, server_default=""),
    Column("outcome", SmallInteger, nullable=False, server_default="0"),
    Column("stream_seq", BigInteger, nullable=False),
    Column("org_seq", BigInteger, nullable=False),
    Column("leaf_hash", LargeBinary, nullable=False),
    UniqueConstraint("org_id", "org_seq", name="audit_log_org_seq"),
)

# The size of each org's log: the row is locked while a batch is appended (one writer per org).
org_logs = Table(
    "org_logs",
    metadata,
    Column("org_id", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
)

# Hash of every perfect aligned subtree of each org's tree: (level, idx) covers leaves
# [idx * 2**level, (idx + 1) * 2**level). Proofs read O(log n) of these.
merkle_nodes = Table(
    "merkle_nodes",
    metadata,
    Column("org_id", String(64), primary_key=True),
    Column("level", SmallInteger, primary_key=True),
    Column("idx", BigInteger, primary_key=True),
    Column("hash", LargeBinary, nullable=False),
)

# Signed tree heads: (size, root) of an org's log, chained to the previous one.
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("org_id", String(64), primary_key=True),
    Column("tree_size", BigInteger, primary_key=True),
    Column("root_hash", LargeBinary, nullable=False),
    Column("sealed_at", DateTime(timezone=True), nullable=False),
    Column("previous_size", BigInteger, nullable=False),
    Column("previous_root_hash", LargeBinary, nullable=False),
    Column("key_id", String(200), nullable=False),
    Column("signature", LargeBinary, nullable=False),
)

# Messages that could not be read as an AuditEvent: kept and counted, never dropped.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("subject", String(255), nullable=False),
    Column("stream_seq", BigInteger, nullable=False, unique=True),
    Column("payload", LargeBinary, nullable=False),
    Column("reason", Text, nullable=False),
    Column("deliveries", Integer, nullable=False, server_default="1"),
)

outbox = outbox_table(metadata)

# Each org's retention tier (L2); an org without a row is never purged.
org_retention = Table(
    "org_retention",
    metadata,
    Column("org_id", String(64), primary_key=True),
    Column("tier", String(16), nullable=False),  # CHECK: free, starter, business, enterprise
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Signed records of purged segments (L2): leaves [first_index, end_index), the Merkle node
# (level, idx) kept in their stead. Insert-only, like the log; written in the purge's transaction.
purges = Table(
    "purges",
    metadata,
    Column("org_id", String(64), primary_key=True),
    Column("first_index", BigInteger, primary_key=True),
    Column("end_index", BigInteger, nullable=False),
    Column("level", SmallInteger, nullable=False),
    Column("idx", BigInteger, nullable=False),
    Column("range_hash", LargeBinary, nullable=False),
    Column("newest_occurred_at", DateTime(timezone=True), nullable=False),
    Column("cutoff", DateTime(timezone=True), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("purged_at", DateTime(timezone=True), nullable=False),
    Column("key_id", String(200), nullable=False),
    Column("signature", LargeBinary, nullable=False),
)
