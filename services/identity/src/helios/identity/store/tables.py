"""Identity's tables, all in the `identity` schema."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    false,
    func,
)

from helios.kernel.outbox import outbox_table

__all__ = [
    "SCHEMA",
    "email_tokens",
    "mail_outbox",
    "memberships",
    "metadata",
    "orgs",
    "outbox",
    "sessions",
    "sign_in_failures",
    "sign_in_lockouts",
    "users",
]

SCHEMA = "identity"
metadata = MetaData(schema=SCHEMA)

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(254), nullable=False),
    Column("display_name", String(100), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("email_verified_at", DateTime(timezone=True)),
)
Index("users_email_key", func.lower(users.c.email), unique=True)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("org_id", Uuid),
    Column("ip", String(64), nullable=False, server_default=""),
    Column("user_agent", String(512), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("method", String(32), nullable=False, server_default="password"),
    Column("impersonator_id", Uuid),
    Column("last_seen_at", DateTime(timezone=True)),
)

orgs = Table(
    "orgs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("slug", String(63), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("require_mfa", Boolean, nullable=False, server_default=false()),
    Column("magic_link_enabled", Boolean, nullable=False, server_default=false()),
)

memberships = Table(
    "memberships",
    metadata,
    Column("org_id", Uuid, ForeignKey(orgs.c.id, ondelete="CASCADE"), primary_key=True),
    Column("user_id", Uuid, ForeignKey(users.c.id, ondelete="CASCADE"), primary_key=True),
    Column("user_type", String(63), nullable=False),
    Column("joined_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Throttling (see domain/throttle.py): `key` is a sha256 hex digest of the scope and the account
# or IP, never the address itself.
sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False),
)
Index("ix_sign_in_failures_key_failed_at", sign_in_failures.c.key, sign_in_failures.c.failed_at)

sign_in_lockouts = Table(
    "sign_in_lockouts",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("scope", String(16), nullable=False),
    Column("locked_until", DateTime(timezone=True), nullable=False),
)

outbox = outbox_table(metadata)

# Outbound mail (store/mail.py, mail/sender.py). Bodies may hold one-time links: the sender blanks
# `body_text` once the message is sent or given up, so only the envelope stays as a send record.
mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("to_address", String(254), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body_text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("attempts", BigInteger, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    Column("last_error", String(500)),
    Column("message_id", String(255)),
)
Index(
    "mail_outbox_due",
    mail_outbox.c.next_attempt_at,
    postgresql_where=mail_outbox.c.sent_at.is_(None),
)

# One-time tokens sent by mail (e-mail verification, password reset): only the sha256 of the
# token is stored. `used_at` is set when the token is redeemed or superseded by a newer one.
email_tokens = Table(
    "email_tokens",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("user_id", Uuid, ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
)
Index(
    "ix_email_tokens_user_purpose_created",
    email_tokens.c.user_id,
    email_tokens.c.purpose,
    email_tokens.c.created_at,
)

# --- second factors (A3, A9): tables of the mfa area go here ---

# --- push 2FA (A3): tables of the push area go here ---

# --- magic links (A8), login history (S5), known devices (S4): tables go here ---

# --- API keys: tables go here ---

# --- provider configuration (C1): tables go here ---
