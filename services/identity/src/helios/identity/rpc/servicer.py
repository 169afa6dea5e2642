"""IdentityService over gRPC, composed from one handler class per area. RPCs no handler defines
answer UNIMPLEMENTED (the generated base class)."""

from __future__ import annotations

from helios.identity.rpc.accounts import AccountHandlers
from helios.identity.rpc.sessions import SessionHandlers
from helios.identity.service.bundle import IdentityServices
from helios.proto.identity.v1 import identity_pb2_grpc

__all__ = ["IdentityServicer"]


class IdentityServicer(
    AccountHandlers,
    SessionHandlers,
    identity_pb2_grpc.IdentityServiceServicer,
):
    """Thin handlers; errors are mapped to status codes by the kernel interceptor."""

    def __init__(self, services: IdentityServices) -> None:
        self._services = services
