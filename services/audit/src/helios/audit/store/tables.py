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
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from helios.kernel.outbox import outbox_table

__all__ = ["SCHEMA", "audit_log", "dead_letters", "metadata", "outbox"]

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
