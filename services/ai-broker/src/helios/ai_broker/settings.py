"""The AI broker's settings (HELIOS_* variables) on top of the kernel's."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from helios.kernel.settings import ServiceSettings

__all__ = ["AiBrokerSettings"]


class AiBrokerSettings(ServiceSettings):
    """`principal_signing_key_file` is the broker's own Ed25519 key: it signs AI principals,
    which verifiers accept from it for AI principals only (HELIOS_AI_PRINCIPAL_PUBLIC_KEY_FILE).
    `action_targets` maps each registering service (mTLS identity) to its gRPC address."""

    principal_signing_key_file: Path = Field(description="PEM Ed25519 key of AI assertions")
    action_targets: dict[str, str] = Field(
        default_factory=dict,
        description="service name -> host:port of the services whose actions the broker calls"
        " (JSON object)",
    )

    ai_session_rate_limit_per_minute: int = Field(
        default=60,
        ge=1,
        le=10_000,
        description="invocations per minute a new AI session may make, across every replica",
    )

    confirmation_ttl_seconds: int = Field(
        default=900,
        ge=60,
        le=24 * 3600,
        description="how long a parked dangerous invocation waits for its person to confirm",
    )
    action_call_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="deadline of one call to a target service"
    )

    @field_validator("principal_signing_key_file")
    @classmethod
    def _key_exists(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"file not found: {value}")
        return value
