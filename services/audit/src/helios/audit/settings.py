"""Audit's settings (HELIOS_* variables): checkpoint sealing, retention passes, keyvault."""

from __future__ import annotations

from pydantic import Field

from helios.kernel.settings import ServiceSettings

__all__ = ["AuditSettings"]


class AuditSettings(ServiceSettings):
    """Every `checkpoint_interval_seconds` each replica seals a signed checkpoint of every org
    whose log grew; keyvault (at `keyvault_target`) signs them with its `audit-checkpoints`
    platform key."""

    checkpoint_interval_seconds: float = Field(
        default=60.0, gt=0, le=86400, description="seconds between two sealing passes"
    )
    retention_segment_level: int = Field(
        default=12,
        ge=1,
        le=30,
        description="retention purges whole segments of 2**level leaves (12: 4,096)",
    )
    retention_purge_interval_seconds: float = Field(
        default=86400.0,
        gt=0,
        le=7 * 86400,
        description="seconds between two retention passes (one runs at start)",
    )
    keyvault_target: str = Field(
        default="keyvault:50051",
        min_length=1,
        description="keyvault's host:port, which signs the checkpoints",
    )
