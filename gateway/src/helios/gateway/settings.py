"""Gateway settings (HELIOS_* variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from helios.gateway.proxies import TrustedProxies
from helios.kernel.settings import KernelSettings

__all__ = ["GatewaySettings"]


class GatewaySettings(KernelSettings):
    """Where the gateway listens, which services it calls, and its edge limits."""

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="serve /metrics on this plain-HTTP port of HELIOS_HTTP_HOST only, never on the"
        " public one (0: /metrics on HELIOS_HTTP_PORT, for local runs)",
    )
    identity_target: str = "identity:50051"
    authz_target: str = "authz:50051"
    ai_broker_target: str = "ai-broker:50051"
    audit_target: str = "audit:50051"
    keyvault_target: str = "keyvault:50051"
    cookie_secure: bool = True
    cookie_key_file: Path = Field(
        description="at least 32 random bytes that authenticate the session cache cookie"
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="origins besides the gateway's own that may send cookie-authenticated writes",
    )
    https_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate chain for HTTPS (TLS 1.3 only); unset serves plain HTTP",
    )
    https_key_file: Path | None = Field(default=None, description="private key of the HTTPS cert")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="CIDRs of proxies whose X-Forwarded-For and CF-* headers are believed",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL for rate-limit counters shared by replicas; unset: per process",
    )
    database_role: str = Field(default="", pattern=r"^[a-z_][a-z0-9_]{0,62}$|^$")
    nats_url: str = Field(
        default="",
        pattern=r"^(nats|tls)://\S+$|^$",
        description="NATS whose AUDIT stream brings identity's session revocations to every"
        " replica at once (S3); unset: another replica's revoke waits out the 60 s cache cookie",
    )
    nats_stream_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="servers that keep the AUDIT stream; the same value as the services'",
    )
    rate_limit_per_ip_per_minute: int = Field(default=600, ge=1)
    rate_limit_per_principal_per_minute: int = Field(default=1200, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    upstream_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    security_contact: str = Field(
        default="mailto:security@helios.invalid",
        pattern=r"^(mailto:[^@\s]+@[^@\s]+|https://\S+)$",
        description="security.txt Contact: a mailto: or https: URI",
    )
    security_policy_url: str = Field(default="", pattern=r"^(https://\S+)?$")
    public_url: str = Field(
        default="",
        pattern=r"^(https?://[^/\s]+)?$",
        description="the gateway's public origin (security.txt Canonical); unset: the request's",
    )

    @field_validator("cookie_key_file")
    @classmethod
    def _key_usable(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"file not found: {value}")
        if len(value.read_bytes()) < 32:
            raise ValueError("the cookie key file must hold at least 32 bytes")
        return value

    @field_validator("https_cert_file", "https_key_file")
    @classmethod
    def _https_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file not found: {value}")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_valid(cls, value: list[str]) -> list[str]:
        TrustedProxies(value)  # raises ValueError naming the bad entry
        return value

    @field_validator("https_key_file")
    @classmethod
    def _key_needs_cert(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and info.data.get("https_cert_file") is None:
            raise ValueError("a key without HELIOS_HTTPS_CERT_FILE")
        return value

    def targets(self) -> dict[str, str]:
        """Service network name -> host:port."""
        return {
            "identity": self.identity_target,
            "authz": self.authz_target,
            "ai-broker": self.ai_broker_target,
            "audit": self.audit_target,
            "keyvault": self.keyvault_target,
        }
