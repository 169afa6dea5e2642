"""AuthzService over gRPC: every RPC, composed from one handler class per area."""

from __future__ import annotations

from helios.authz.rpc.catalog import CatalogHandlers
from helios.authz.rpc.decisions import DecisionHandlers
from helios.authz.rpc.groups import GroupHandlers
from helios.authz.rpc.roles import RoleHandlers
from helios.authz.service.bundle import AuthzServices
from helios.proto.authz.v1 import authz_pb2_grpc

__all__ = ["AuthzServicer"]


class AuthzServicer(
    DecisionHandlers,
    CatalogHandlers,
    RoleHandlers,
    GroupHandlers,
    authz_pb2_grpc.AuthzServiceServicer,
):
    """Thin handlers; errors are mapped to status codes by the kernel interceptor."""

    def __init__(self, services: AuthzServices) -> None:
        self._decisions = services.decisions
        self._access = services.access
        self._catalog = services.catalog
        self._dangerous = services.dangerous
        self._roles = services.roles
        self._teams = services.teams
        self._user_types = services.user_types
