"""Sign-in and session RPCs: SignIn, ResolveSession, GetCurrentUser, SignOut, ListSessions,
RevokeSession, RevokeUserSessions, StartImpersonation, StopImpersonation."""

from __future__ import annotations

from helios.identity.rpc.context import Context
from helios.identity.rpc.convert import second_factor_to_proto, session_to_proto, user_to_proto
from helios.identity.service.bundle import IdentityServices
from helios.kernel.context import current_call
from helios.proto.identity.v1 import identity_pb2

__all__ = ["SessionHandlers"]


class SessionHandlers:
    """Thin handlers over SignInService, SessionService and ImpersonationService."""

    _services: IdentityServices

    async def SignIn(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.SignInRequest, context: Context
    ) -> identity_pb2.SignInResponse:
        outcome = await self._services.sign_in.sign_in(
            request.email, request.password, request.device_token, current_call(), request
        )
        reply = identity_pb2.SignInResponse(user=user_to_proto(outcome.user))
        if outcome.second_factor is not None:
            reply.second_factor.CopyFrom(second_factor_to_proto(outcome.second_factor))
        if outcome.signed_in is not None:
            reply.session_token = outcome.signed_in.token
            reply.session.CopyFrom(session_to_proto(outcome.signed_in.session))
        return reply

    async def GetCurrentUser(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.GetCurrentUserRequest, context: Context
    ) -> identity_pb2.GetCurrentUserResponse:
        user, session = await self._services.sessions.current_user(current_call())
        return identity_pb2.GetCurrentUserResponse(
            user=user_to_proto(user), session=session_to_proto(session)
        )

    async def SignOut(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.SignOutRequest, context: Context
    ) -> identity_pb2.SignOutResponse:
        await self._services.sessions.sign_out(current_call(), request)
        return identity_pb2.SignOutResponse()

    async def ResolveSession(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.ResolveSessionRequest, context: Context
    ) -> identity_pb2.ResolveSessionResponse:
        resolved = await self._services.sessions.resolve_session(
            request.session_token, current_call()
        )
        return identity_pb2.ResolveSessionResponse(
            principal=resolved.principal,
            user=user_to_proto(resolved.user),
            session=session_to_proto(resolved.session),
            assertion=resolved.assertion,
        )

    async def ListSessions(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.ListSessionsRequest, context: Context
    ) -> identity_pb2.ListSessionsResponse:
        ctx = current_call()
        page = await self._services.sessions.list_sessions(
            ctx, request.user_id, request.page_size, request.page_token
        )
        current = ctx.require_principal().session_id
        reply = identity_pb2.ListSessionsResponse(next_page_token=page.next_page_token)
        for session in page.sessions:
            message = reply.sessions.add()
            message.CopyFrom(session_to_proto(session))
            message.current = str(session.id) == current
        return reply

    async def RevokeSession(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.RevokeSessionRequest, context: Context
    ) -> identity_pb2.RevokeSessionResponse:
        await self._services.sessions.revoke_session(current_call(), request.session_id, request)
        return identity_pb2.RevokeSessionResponse()

    async def RevokeUserSessions(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.RevokeUserSessionsRequest, context: Context
    ) -> identity_pb2.RevokeUserSessionsResponse:
        revoked = await self._services.sessions.revoke_user_sessions(
            current_call(), request.user_id, request
        )
        return identity_pb2.RevokeUserSessionsResponse(revoked_count=revoked)

    async def StartImpersonation(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.StartImpersonationRequest, context: Context
    ) -> identity_pb2.StartImpersonationResponse:
        signed_in = await self._services.impersonation.start(
            current_call(), request.user_id, request.ttl_seconds, request.reason, request
        )
        return identity_pb2.StartImpersonationResponse(
            session=session_to_proto(signed_in.session), session_token=signed_in.token
        )

    async def StopImpersonation(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.StopImpersonationRequest, context: Context
    ) -> identity_pb2.StopImpersonationResponse:
        await self._services.impersonation.stop(current_call(), request)
        return identity_pb2.StopImpersonationResponse()
