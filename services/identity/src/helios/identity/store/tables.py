"""Identity's tables, all in the `identity` schema."""

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
    false,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from helios.kernel.outbox import outbox_table

__all__ = [
    "SCHEMA",
    "api_keys",
    "backup_codes",
    "email_otps",
    "email_tokens",
    "known_devices",
    "login_events",
    "mail_outbox",
    "memberships",
    "metadata",
    "orgs",
    "outbox",
    "platform_settings",
    "push_challenges",
    "push_devices",
    "remembered_devices",
    "sessions",
    "sign_in_challenges",
    "sign_in_failures",
    "sign_in_lockouts",
    "totp_credentials",
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

# A sign-in that passed its first factor and waits for a second (domain/second_factor.py): only
# the sha256 of its token is stored; `attempts` counts wrong codes of every method.
sign_in_challenges = Table(
    "sign_in_challenges",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("user_id", Uuid, ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False),
    Column("first_factor", String(32), nullable=False),
    Column("methods", ARRAY(String(32)), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ip", String(64), nullable=False, server_default=""),
    Column("user_agent", String(512), nullable=False, server_default=""),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("completed_at", DateTime(timezone=True)),
)
Index("ix_sign_in_challenges_user_id", sign_in_challenges.c.user_id)

# The e-mailed code of a challenge (at most one; a resend replaces it): only its hash.
email_otps = Table(
    "email_otps",
    metadata,
    Column(
        "challenge_id",
        Uuid,
        ForeignKey(sign_in_challenges.c.id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("code_hash", LargeBinary(32), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("sends", Integer, nullable=False, server_default="1"),
)

# A user's TOTP secret, sealed per row by keyvault (HRS1): `pending_secret` waits for its first
# code; `last_used_step` refuses a code whose time step was already used.
totp_credentials = Table(
    "totp_credentials",
    metadata,
    Column("user_id", Uuid, ForeignKey(users.c.id, ondelete="CASCADE"), primary_key=True),
    Column("secret", LargeBinary),
    Column("pending_secret", LargeBinary),
    Column("confirmed_at", DateTime(timezone=True)),
    Column("last_used_step", BigInteger),
)

# Single-use backup codes: only a salted sha256 of each.
backup_codes = Table(
    "backup_codes",
    metadata,
    Column("user_id", Uuid, ForeignKey(users.c.id, ondelete="CASCADE"), primary_key=True),
    Column("code_hash", LargeBinary(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
)

# Browsers remembered after a second factor (A9): only the sha256 of the device token.
remembered_devices = Table(
    "remembered_devices",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ip", String(64), nullable=False, server_default=""),
    Column("user_agent", String(512), nullable=False, server_default=""),
    Column("last_used_at", DateTime(timezone=True)),
    Column("last_used_ip", String(64)),
    Column("revoked_at", DateTime(timezone=True)),
)
Index("ix_remembered_devices_user_id", remembered_devices.c.user_id)

# --- push 2FA (A3): tables of the push area go here ---

# A user's push devices (domain/push.py): the raw Ed25519 public key each signs its answers with.
push_devices = Table(
    "push_devices",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("public_key", LargeBinary(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
)
Index("push_devices_user_key", push_devices.c.user_id, push_devices.c.public_key, unique=True)

# Push challenges of a sign-in challenge: at most one `pending` at a time (a new one supersedes
# it as `expired`); `consumed_at` is set when an approval opened the session.
push_challenges = Table(
    "push_challenges",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column(
        "sign_in_challenge_id",
        Uuid,
        ForeignKey(sign_in_challenges.c.id, ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", Uuid, ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False),
    Column("nonce", LargeBinary(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ip", String(64), nullable=False, server_default=""),
    Column("user_agent", String(512), nullable=False, server_default=""),
    Column("city", String(100), nullable=False, server_default=""),
    Column("country", String(8), nullable=False, server_default=""),
    Column("answered_at", DateTime(timezone=True)),
    Column("device_id", Uuid, ForeignKey(push_devices.c.id, ondelete="SET NULL")),
    Column("consumed_at", DateTime(timezone=True)),
)
Index(
    "push_challenges_one_pending",
    push_challenges.c.sign_in_challenge_id,
    unique=True,
    postgresql_where=push_challenges.c.state == "pending",
)
Index("ix_push_challenges_user_state", push_challenges.c.user_id, push_challenges.c.state)

# --- magic links (A8), login history (S5), known devices (S4): tables go here ---

# Magic links (A8) are e-mailed tokens of purpose "magic_link" in `email_tokens`.

# Every sign-in attempt of a known user (S5), success or failure; `device_id` is the device
# fingerprint of service/device_alerts.py. Bounded: the sign-in transaction prunes rows older
# than the retention and a user's rows beyond a cap (service/login_history.py HistoryPolicy).
login_events = Table(
    "login_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("user_id", Uuid, ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("ip", String(64), nullable=False, server_default=""),
    Column("city", String(100), nullable=False, server_default=""),
    Column("country", String(2), nullable=False, server_default=""),
    Column("user_agent", String(512), nullable=False, server_default=""),
    Column("device_id", String(64), nullable=False, server_default=""),
    Column("method", String(32), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("failure_reason", String(64), nullable=False, server_default=""),
)
Index(
    "ix_login_events_user_time",
    login_events.c.user_id,
    login_events.c.occurred_at,
    login_events.c.id,
)
Index("ix_login_events_time", login_events.c.occurred_at)

# The devices (browser family + IP network) a user has signed in from (S4): a successful
# sign-in from one not listed queues an alert mail. Capped per user (least recently seen go).
known_devices = Table(
    "known_devices",
    metadata,
    Column("user_id", Uuid, ForeignKey(users.c.id, ondelete="CASCADE"), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    Column("browser", String(100), nullable=False),
    Column("ip", String(64), nullable=False, server_default=""),
    Column("city", String(100), nullable=False, server_default=""),
    Column("country", String(2), nullable=False, server_default=""),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
)

# --- API keys: tables go here ---

# API keys for machine callers (domain/api_keys.py): only the sha256 of the secret is stored; a
# key acts as `created_by` in `org_id`, narrowed to `permissions`.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, ForeignKey(orgs.c.id, ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("permissions", ARRAY(String(200)), nullable=False),
    Column("created_by", Uuid, ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False),
    Column("secret_hash", LargeBinary(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)
Index("ix_api_keys_org_created", api_keys.c.org_id, api_keys.c.created_at)

# --- provider configuration (C1): tables go here ---

# One row (key 'auth'): `auth_config` holds the configuration as JSON; each OIDC provider's client
# secret in it is a keyvault row secret (RowCipher, base64), never plaintext. `version` is the
# optimistic lock of UpdateAuthConfig.
platform_settings = Table(
    "platform_settings",
    metadata,
    Column("key", String(32), primary_key=True),
    Column("auth_config", JSONB, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(64), nullable=False),
    CheckConstraint("key = 'auth'", name="platform_settings_one_row"),
)
