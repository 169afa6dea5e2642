"""Settings from `HELIOS_*` environment variables, validated at start-up, secrets never shown."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "SECRETS_DIR_VARIABLE",
    "GrpcSettings",
    "KernelSettings",
    "ServiceSettings",
    "load_settings",
    "secrets_dir",
]

SECRETS_DIR_VARIABLE = "HELIOS_SECRETS_DIR"
"""A folder of files named after variables (e.g. `HELIOS_DATABASE_URL`), each holding that
setting's value: secrets as mounted files instead of environment variables."""


class KernelSettings(BaseSettings):
    """What every Helios process needs: logging, telemetry and its mTLS identity."""

    model_config = SettingsConfigDict(env_prefix="HELIOS_", extra="ignore", frozen=True)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    tls_ca_file: Path = Field(
        description="PEM bundle of the CA that signs every service certificate"
    )
    tls_cert_file: Path = Field(
        description="this process's certificate (SAN spiffe://helios/<svc>)"
    )
    tls_key_file: Path = Field(description="this process's private key")
    principal_public_key_file: Path = Field(
        description="PEM Ed25519 public key that verifies principal assertions"
    )
    ai_principal_public_key_file: Path | None = Field(
        default=None,
        description="PEM Ed25519 public key of the AI broker: verifies AI principals only",
    )

    @field_validator(
        "tls_ca_file",
        "tls_cert_file",
        "tls_key_file",
        "principal_public_key_file",
        "ai_principal_public_key_file",
    )
    @classmethod
    def _must_exist(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file not found: {value}")
        return value


class GrpcSettings(KernelSettings):
    """A gRPC server process."""

    grpc_host: str = "0.0.0.0"
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    shutdown_grace_seconds: float = Field(default=5.0, ge=0)
    authz_target: str = Field(
        default="authz:50051",
        min_length=1,
        description="authz's host:port, where the service registers its permissions at start",
    )
    metrics_port: int = Field(
        default=0, ge=0, le=65535, description="serve Prometheus /metrics on this port (0: off)"
    )
    health_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="also serve only grpc.health.v1.Health, in plaintext, on this port for the"
        " kubelet's grpc probe (0: off)",
    )


class ServiceSettings(GrpcSettings):
    """A gRPC service with its own PostgreSQL schema and an outbox relayed to NATS JetStream."""

    database_url: SecretStr = Field(description="postgresql:// URL; may carry a password")
    database_role: str = Field(
        default="",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$|^$",
        description="role to SET after connecting (least privilege); empty keeps the login role",
    )
    nats_url: str = "nats://127.0.0.1:4222"
    nats_stream_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="servers that keep the AUDIT stream (3 on a three-node JetStream cluster);"
        " the same value in every process",
    )


S = TypeVar("S", bound=KernelSettings)


def secrets_dir() -> Path | None:
    """The folder HELIOS_SECRETS_DIR names, or None when unset; ValueError (naming the
    variable) when it is not a folder."""
    value = os.environ.get(SECRETS_DIR_VARIABLE, "")
    if not value:
        return None
    if not Path(value).is_dir():
        raise ValueError(f"{SECRETS_DIR_VARIABLE}: not a folder")
    return Path(value)


def load_settings(settings_type: type[S]) -> S:
    """Settings from the environment, and from the files in the folder HELIOS_SECRETS_DIR names
    (a variable set in the environment wins over its file); on error print each bad variable's
    name and the problem (never its value) and exit with status 2."""
    try:
        folder = secrets_dir()
    except ValueError as exc:
        print(f"invalid setting {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        # values come from the environment and the secrets folder
        return settings_type(_secrets_dir=folder)  # type: ignore[call-arg]
    except ValidationError as exc:
        for error in exc.errors():
            name = "HELIOS_" + "_".join(str(p) for p in error["loc"]).upper()
            print(f"invalid setting {name}: {error['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
