"""Keyvault's settings (HELIOS_* variables): the seal provider that holds the root key."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from helios.kernel.settings import ServiceSettings

__all__ = ["KeyvaultSettings"]


class KeyvaultSettings(ServiceSettings):
    """`local` seal: a root key file (created 0600 on first start) or, when a passphrase is
    set, a root key derived from it with argon2id; `vault` seal: the root key kept encrypted by
    HashiCorp Vault's transit engine and decrypted there at start."""

    seal_provider: Literal["local", "vault"] = "local"
    vault_addr: str | None = Field(
        default=None, description="Vault address, e.g. https://vault.internal:8200 (provider vault)"
    )
    vault_token: SecretStr | None = Field(
        default=None, description="token with update on <mount>/encrypt|decrypt/<key>"
    )
    vault_transit_key: str = Field(default="helios-keyvault", min_length=1)
    vault_mount: str = Field(default="transit", min_length=1)
    vault_ca_file: Path | None = Field(default=None, description="CA bundle for Vault's TLS")
    seal_state_dir: Path = Field(description="where the root key file (or salt and check) live")
    seal_passphrase: SecretStr | None = Field(
        default=None, description="derive the root key from this passphrase instead of a file"
    )
    seal_argon2_time_cost: int = Field(default=3, ge=1, le=20)
    seal_argon2_memory_kib: int = Field(default=65536, ge=8, le=4 * 1024 * 1024)
    seal_argon2_parallelism: int = Field(default=4, ge=1, le=64)
    secrets_callers: frozenset[str] = Field(
        default=frozenset({"identity", "gateway", "audit", "ai-broker", "authz"}),
        description="services (mTLS identities) that may use platform secrets, a JSON list",
    )
    attachment_store: Literal["local", "s3"] = "local"
    attachment_dir: Path | None = Field(
        default=None,
        description="folder of the local store (default: <seal_state_dir>/attachments)",
    )
    attachment_s3_bucket: str | None = Field(default=None, description="bucket (store s3)")
    attachment_s3_prefix: str = Field(default="attachments", description="key prefix (store s3)")
    attachment_s3_endpoint_url: str | None = Field(
        default=None,
        description="S3 API endpoint (store s3; unset: AWS); credentials: boto3's chain",
    )
    attachment_s3_region: str | None = Field(default=None, description="region (store s3)")
    attachment_max_bytes: int = Field(default=5 * 1024**3, ge=1, description="largest attachment")
    rotation_check_seconds: float = Field(default=60.0, gt=0, le=86400)
