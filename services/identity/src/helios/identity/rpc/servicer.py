"""IdentityService over gRPC, composed from one handler class per area. RPCs no handler defines
answer UNIMPLEMENTED (the generated base class)."""

from __future__ import annotations

from helios.identity.rpc.accounts import AccountHandlers
from helios.identity.rpc.api_keys import ApiKeyHandlers
from helios.identity.rpc.auth_config import AuthConfigHandlers
from helios.identity.rpc.mfa import MfaHandlers
from helios.identity.rpc.orgs import OrgHandlers
from helios.identity.rpc.push import PushHandlers
from helios.identity.rpc.sessions import SessionHandlers
from helios.identity.rpc.sign_in_extras import SignInExtrasHandlers
from helios.identity.service.bundle import IdentityServices
from helios.proto.identity.v1 import identity_pb2_grpc

__all__ = ["IdentityServicer"]


class IdentityServicer(
    AccountHandlers,
    SessionHandlers,
    MfaHandlers,
    PushHandlers,
    AuthConfigHandlers,
    SignInExtrasHandlers,
    OrgHandlers,
    ApiKeyHandlers,
    identity_pb2_grpc.IdentityServiceServicer,
):
    """Thin handlers; errors are mapped to status codes by the kernel interceptor."""

    def __init__(self, services: IdentityServices) -> None:
        self._services = services
