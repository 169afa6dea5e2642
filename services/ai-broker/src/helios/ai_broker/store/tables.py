"""The broker's tables, all in the `ai_broker` schema."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from helios.kernel.outbox import outbox_table

__all__ = [
    "SCHEMA",
    "actions",
    "ai_policies",
    "ai_rate_windows",
    "ai_sessions",
    "invocations",
    "metadata",
    "outbox",
]

SCHEMA = "ai_broker"
metadata = MetaData(schema=SCHEMA)

outbox = outbox_table(metadata)

# --- AI sessions (I1) and their rate windows: tables of the sessions area go here ---

# A delegation from `user_id` to an AI (domain/model.py AiSession): only the sha256 of its token.
ai_sessions = Table(
    "ai_sessions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("purpose", String(500), nullable=False),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("token_prefix", String(16), nullable=False),
    Column("permissions", ARRAY(String(200)), nullable=False),
    Column("rate_limit_per_minute", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_by", String(64), nullable=False, server_default=""),
    Column("last_used_at", DateTime(timezone=True)),
    Index("ix_ai_sessions_user_created", "org_id", "user_id", "created_at"),
)

# Invocations counted per AI session and minute, shared by every broker replica (I1).
ai_rate_windows = Table(
    "ai_rate_windows",
    metadata,
    Column(
        "session_id",
        Uuid,
        ForeignKey(ai_sessions.c.id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("window_start", DateTime(timezone=True), primary_key=True),
    Column("count", Integer, nullable=False),
)

# --- AI policies (I3) ---

# Each org's AI policy; an org without a row has the defaults (domain/policy.py).
ai_policies = Table(
    "ai_policies",
    metadata,
    Column("org_id", Uuid, primary_key=True),
    Column("require_step_up_to_confirm", Boolean, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(64), nullable=False),
)

# --- action registry (I5): tables of the registry area go here ---

# The actions services registered (domain/model.py Action); a service's set is replaced whole.
actions = Table(
    "actions",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("service", String(64), nullable=False),
    Column("description", String(300), nullable=False),
    Column("permission", String(200), nullable=False),
    Column("input_schema", JSONB, nullable=False),
    Column("target_method", String(300), nullable=False),
    Column("ai_allowed", Boolean, nullable=False),
    Column("summary_template", String(500), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_actions_service", "service"),
)

# --- invocations and parked confirmations (I3, I4): tables of the invocations area go here ---

# AI calls of registered actions (domain/model.py Invocation): the input and output as canonical
# JSON text (exactly what their sha256 covers, so the hashes recompute from the row), and for a
# dangerous one the sha256 of its confirmation nonce and its deadline.
invocations = Table(
    "invocations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("ai_session_id", Uuid, ForeignKey(ai_sessions.c.id), nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("action", String(200), nullable=False),
    Column("state", String(32), nullable=False),
    Column("input_json", Text, nullable=False),
    Column("input_hash", String(64), nullable=False),
    Column("output_json", Text),
    Column("output_hash", String(64), nullable=False, server_default=""),
    Column("dangerous", Boolean, nullable=False),
    Column("decision_id", String(64), nullable=False),
    Column("confirmation_hash", LargeBinary(32)),
    Column("confirmation_expires_at", DateTime(timezone=True)),
    Column("summary", Text, nullable=False, server_default=""),
    Column("system_prompt_hash", String(64), nullable=False, server_default=""),
    Column("step_up_required", Boolean, nullable=False, server_default="false"),
    Column("decided_by", String(64), nullable=False, server_default=""),
    Column("error_code", String(64), nullable=False, server_default=""),
    Column("error_message", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
    CheckConstraint(
        "state IN ('pending_confirmation', 'running', 'succeeded', 'failed', 'rejected',"
        " 'expired')",
        name="ck_invocations_state",
    ),
    Index("ix_invocations_session_created", "ai_session_id", "created_at"),
)
