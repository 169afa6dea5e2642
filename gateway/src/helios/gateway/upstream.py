"""The gateway's gRPC stubs of the services behind it, over mutual TLS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2_grpc

from helios.kernel.clients import secure_channel
from helios.kernel.tls import CertFiles
from helios.proto.audit.v1 import audit_pb2_grpc
from helios.proto.identity.v1 import identity_pb2_grpc

if TYPE_CHECKING:
    from helios.proto.audit.v1.audit_pb2_grpc import AuditServiceAsyncStub
    from helios.proto.identity.v1.identity_pb2_grpc import IdentityServiceAsyncStub

__all__ = ["Upstream"]


@dataclass
class Upstream:
    """Channels and stubs; `close()` when the app shuts down."""

    channels: list[grpc.aio.Channel]
    identity: IdentityServiceAsyncStub
    # types-grpcio-health-checking leaves the HealthStub methods untyped.
    identity_health: Any
    audit: AuditServiceAsyncStub
    timeout: float

    @classmethod
    def connect(
        cls, certs: CertFiles, identity_target: str, audit_target: str, timeout: float
    ) -> Upstream:
        """Stubs over lazily connecting channels (no I/O until the first call)."""
        identity = secure_channel(identity_target, certs)
        audit = secure_channel(audit_target, certs)
        return cls(
            channels=[identity, audit],
            identity=identity_pb2_grpc.IdentityServiceStub(identity),
            identity_health=health_pb2_grpc.HealthStub(identity),
            audit=audit_pb2_grpc.AuditServiceStub(audit),
            timeout=timeout,
        )

    async def close(self) -> None:
        """Close every channel."""
        for channel in self.channels:
            await channel.close()
