"""Identity's settings (HELIOS_* variables) on top of the kernel's."""

from __future__ import annotations

import uuid
from pathlib import Path

from pydantic import Field, field_validator

from helios.kernel.settings import ServiceSettings

__all__ = ["IdentitySettings"]


class IdentitySettings(ServiceSettings):
    """Argon2 defaults are the RFC 9106 second recommendation; tests set cheap ones."""

    principal_signing_key_file: Path = Field(description="PEM Ed25519 key that signs assertions")
    argon2_time_cost: int = Field(default=3, ge=1, le=20)
    argon2_memory_kib: int = Field(default=65536, ge=8, le=4 * 1024 * 1024)
    argon2_parallelism: int = Field(default=4, ge=1, le=64)
    session_ttl_seconds: int = Field(default=12 * 3600, ge=60, le=30 * 24 * 3600)
    # A session without a request for this long ends (S1), unless the deployment's auth_config
    # sets its own session_idle_timeout_seconds (C1).
    session_idle_timeout_seconds: int = Field(default=2 * 3600, ge=300, le=30 * 24 * 3600)
    # authz's HELIOS_PLATFORM_ORG_ID: where the platform root holds its role (S6 never
    # impersonates the root).
    platform_org_id: str = Field(default="platform", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # The provider configuration (C1) is reloaded on every announced change and at this period
    # (in case an announcement was missed); secrets in it are sealed in the platform org.
    auth_config_refresh_seconds: float = Field(default=30.0, ge=1, le=3600)
    # Sign-in throttling (domain/throttle.py), shared by every replica through PostgreSQL.
    signin_max_failures_per_account: int = Field(default=10, ge=1, le=1000)
    signin_max_failures_per_ip: int = Field(default=50, ge=1, le=100_000)
    signin_failure_window_seconds: int = Field(default=900, ge=1, le=7 * 24 * 3600)
    signin_lockout_seconds: int = Field(default=900, ge=1, le=7 * 24 * 3600)
    # How often expired throttle rows are deleted (store/throttle_cleanup.py).
    signin_throttle_cleanup_seconds: int = Field(default=300, ge=10, le=24 * 3600)
    # Outbound mail (mail/sender.py): SMTP relay, From, DKIM selector; keyvault holds the keys.
    smtp_host: str = Field(default="localhost", min_length=1)
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = Field(default=True)
    mail_from: str = Field(default="Helios <no-reply@helios.localhost>", min_length=3)
    mail_dkim_selector: str = Field(default="helios1", min_length=1)
    keyvault_target: str = Field(default="keyvault:50051", min_length=1)
    # Account mails (service.AccountMail): links point at the public origin; users have no org
    # at sign-up, so these mails are queued and DKIM-signed as the platform sender org.
    public_url: str = Field(
        default="http://localhost:8080",
        pattern=r"^https?://[^/\s]+$",
        description="the public origin the e-mailed links point at",
    )
    mail_platform_org: uuid.UUID = Field(
        default=uuid.UUID(int=0), description="org id whose DKIM key signs account mails"
    )
    email_verification_ttl_seconds: int = Field(default=24 * 3600, ge=300, le=30 * 24 * 3600)
    password_reset_ttl_seconds: int = Field(default=3600, ge=300, le=24 * 3600)
    password_reset_max_per_hour: int = Field(default=3, ge=1, le=100)
    # Magic links (service/magic_links.py MagicLinkPolicy): link lifetime, links per account and
    # hour. Whether they are on at all is the deployment's auth config or an org's policy.
    magic_link_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    magic_link_max_per_hour: int = Field(default=3, ge=1, le=100)
    # Login history (service/login_history.py HistoryPolicy): how long and how much is kept.
    login_history_retention_days: int = Field(default=180, ge=1, le=3650)
    login_history_max_per_user: int = Field(default=1000, ge=10, le=100_000)
    # Push 2FA (domain/push.py PushPolicy): challenge lifetime, pushes per sign-in, watch polling.
    push_challenge_ttl_seconds: int = Field(default=120, ge=10, le=600)
    push_max_per_sign_in: int = Field(default=5, ge=1, le=50)
    push_watch_poll_seconds: float = Field(default=0.5, ge=0.05, le=5.0)

    @field_validator("principal_signing_key_file")
    @classmethod
    def _key_exists(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"file not found: {value}")
        return value
