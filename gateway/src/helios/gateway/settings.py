"""Gateway settings (HELIOS_* variables)."""

from __future__ import annotations

from pydantic import Field

from helios.kernel.settings import KernelSettings

__all__ = ["GatewaySettings"]


class GatewaySettings(KernelSettings):
    """Where the gateway listens, which services it calls, and its edge limits."""

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    identity_target: str = "identity:50051"
    audit_target: str = "audit:50051"
    cookie_secure: bool = True
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    upstream_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    security_contact: str = Field(default="security@helios.invalid", pattern=r"^[^@\s]+@[^@\s]+$")
