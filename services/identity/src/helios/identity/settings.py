"""Identity's settings (HELIOS_* variables) on top of the kernel's."""

from __future__ import annotations

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

    @field_validator("principal_signing_key_file")
    @classmethod
    def _key_exists(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"file not found: {value}")
        return value
