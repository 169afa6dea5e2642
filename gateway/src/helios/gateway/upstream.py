"""The gateway's gRPC channels to the services behind it, over mutual TLS."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2_grpc

from helios.kernel.clients import secure_channel
from helios.kernel.tls import CertFiles
from helios.proto.ai_broker.v1 import ai_broker_pb2_grpc
from helios.proto.audit.v1 import audit_pb2_grpc
from helios.proto.identity.v1 import identity_pb2_grpc

if TYPE_CHECKING:
    from helios.proto.ai_broker.v1.ai_broker_pb2_grpc import AiBrokerServiceAsyncStub
    from helios.proto.audit.v1.audit_pb2_grpc import AuditServiceAsyncStub
    from helios.proto.identity.v1.identity_pb2_grpc import IdentityServiceAsyncStub

__all__ = ["Upstream"]


@dataclass
class Upstream:
    """One channel per service (keyed by its network name) plus typed stubs the explicit routes
    use; `close()` when the app shuts down."""

    channels: dict[str, grpc.aio.Channel]
    identity: IdentityServiceAsyncStub
    audit: AuditServiceAsyncStub
    ai_broker: AiBrokerServiceAsyncStub
    # types-grpcio-health-checking leaves the HealthStub methods untyped.
    health: dict[str, Any]
    timeout: float

    @classmethod
    def connect(cls, certs: CertFiles, targets: Mapping[str, str], timeout: float) -> Upstream:
        """Channels to `targets` (service name -> host:port); they connect lazily."""
        channels = {name: secure_channel(target, certs) for name, target in targets.items()}
        return cls(
            channels=channels,
            identity=identity_pb2_grpc.IdentityServiceStub(channels["identity"]),
            audit=audit_pb2_grpc.AuditServiceStub(channels["audit"]),
            ai_broker=ai_broker_pb2_grpc.AiBrokerServiceStub(channels["ai-broker"]),
            health={name: health_pb2_grpc.HealthStub(ch) for name, ch in channels.items()},
            timeout=timeout,
        )

    def channel(self, service: str) -> grpc.aio.Channel:
        """The channel to one service; raises KeyError for an unknown one."""
        return self.channels[service]

    async def close(self) -> None:
        """Close every channel."""
        for channel in self.channels.values():
            await channel.close()
