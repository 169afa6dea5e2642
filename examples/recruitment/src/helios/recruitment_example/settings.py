"""The example service's settings (HELIOS_* variables) on top of the kernel's gRPC ones."""

from __future__ import annotations

from pydantic import Field

from helios.kernel.settings import GrpcSettings

__all__ = ["RecruitmentSettings"]


class RecruitmentSettings(GrpcSettings):
    """`ai_broker_target` is where the service registers its AI actions at start. Its mTLS
    identity must be `recruitment`, listed in authz's HELIOS_PRODUCT_SERVICES and in the
    broker's HELIOS_ACTION_TARGETS."""

    ai_broker_target: str = Field(
        default="ai-broker:50051",
        min_length=1,
        description="the AI broker's host:port, where the service registers its actions at start",
    )
