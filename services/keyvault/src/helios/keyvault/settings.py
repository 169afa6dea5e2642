"""Keyvault's settings (HELIOS_* variables): the seal provider that holds the root key."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from helios.kernel.settings import ServiceSettings

__all__ = ["KeyvaultSettings"]


class KeyvaultSettings(ServiceSettings):
    """`local` seal: a root key file (created 0600 on first start) or, when a passphrase is
    set, a root key derived from it with argon2id."""

    seal_provider: Literal["local"] = "local"
    seal_state_dir: Path = Field(description="where the root key file (or salt and check) live")
    seal_passphrase: SecretStr | None = Field(
        default=None, description="derive the root key from this passphrase instead of a file"
    )
    seal_argon2_time_cost: int = Field(default=3, ge=1, le=20)
    seal_argon2_memory_kib: int = Field(default=65536, ge=8, le=4 * 1024 * 1024)
    seal_argon2_parallelism: int = Field(default=4, ge=1, le=64)
    rotation_check_seconds: float = Field(default=60.0, gt=0, le=86400)
