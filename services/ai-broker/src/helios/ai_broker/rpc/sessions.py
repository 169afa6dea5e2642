"""AI session RPCs: CreateAiSession, RevokeAiSession, ListAiSessions, ResolveAiToken."""

from __future__ import annotations

from helios.ai_broker.rpc.context import Context
from helios.ai_broker.rpc.session_convert import ai_session_to_proto
from helios.ai_broker.service.bundle import BrokerServices
from helios.kernel.context import current_call
from helios.proto.ai_broker.v1 import ai_broker_pb2

__all__ = ["SessionHandlers"]


class SessionHandlers:
    """Thin handlers over AiSessionService."""

    _services: BrokerServices

    async def CreateAiSession(  # noqa: N802 - gRPC method name
        self, request: ai_broker_pb2.CreateAiSessionRequest, context: Context
    ) -> ai_broker_pb2.CreateAiSessionResponse:
        created = await self._services.sessions.create(
            request.org_id,
            request.purpose,
            list(request.permissions),
            request.ttl.ToTimedelta() if request.HasField("ttl") else None,
            current_call(),
            request,
        )
        return ai_broker_pb2.CreateAiSessionResponse(
            session=ai_session_to_proto(created.session, created.session.created_at),
            token=created.token,
        )

    async def RevokeAiSession(  # noqa: N802 - gRPC method name
        self, request: ai_broker_pb2.RevokeAiSessionRequest, context: Context
    ) -> ai_broker_pb2.RevokeAiSessionResponse:
        session = await self._services.sessions.revoke(
            request.org_id, request.ai_session_id, current_call(), request
        )
        return ai_broker_pb2.RevokeAiSessionResponse(
            session=ai_session_to_proto(session, session.revoked_at or session.expires_at)
        )

    async def ListAiSessions(  # noqa: N802 - gRPC method name
        self, request: ai_broker_pb2.ListAiSessionsRequest, context: Context
    ) -> ai_broker_pb2.ListAiSessionsResponse:
        page = await self._services.sessions.list_sessions(
            request.org_id,
            request.user_id,
            request.include_inactive,
            request.page_size,
            request.page_token,
            current_call(),
        )
        return ai_broker_pb2.ListAiSessionsResponse(
            sessions=[ai_session_to_proto(s, page.now) for s in page.sessions],
            next_page_token=page.next_page_token,
        )

    async def ResolveAiToken(  # noqa: N802 - gRPC method name
        self, request: ai_broker_pb2.ResolveAiTokenRequest, context: Context
    ) -> ai_broker_pb2.ResolveAiTokenResponse:
        resolved = await self._services.sessions.resolve(request.token, current_call())
        return ai_broker_pb2.ResolveAiTokenResponse(
            principal=resolved.principal,
            assertion=resolved.assertion,
            permissions=list(resolved.session.permissions),
            rate_limit_per_minute=resolved.session.rate_limit_per_minute,
        )
