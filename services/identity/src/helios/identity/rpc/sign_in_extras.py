"""Magic-link and login-history RPCs: RequestMagicLink, RedeemMagicLink, ListLoginHistory."""

from __future__ import annotations

from helios.identity.domain.sign_in_records import LoginEvent
from helios.identity.rpc.context import Context
from helios.identity.rpc.convert import second_factor_to_proto, session_to_proto, user_to_proto
from helios.identity.service.bundle import IdentityServices
from helios.kernel.context import current_call
from helios.proto.identity.v1 import identity_pb2

__all__ = ["SignInExtrasHandlers", "login_event_to_proto"]


def login_event_to_proto(event: LoginEvent) -> identity_pb2.LoginEvent:
    """One sign-in attempt as the proto shows it."""
    message = identity_pb2.LoginEvent(
        user_id=str(event.user_id),
        ip=event.ip,
        city=event.city,
        country=event.country,
        user_agent=event.user_agent,
        device_id=event.device_id,
        method=event.method,
        outcome=event.outcome.value,
        failure_reason=event.failure_reason,
    )
    message.time.FromDatetime(event.occurred_at)
    return message


class SignInExtrasHandlers:
    """Thin handlers over MagicLinkService and LoginHistory."""

    _services: IdentityServices

    async def RequestMagicLink(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.RequestMagicLinkRequest, context: Context
    ) -> identity_pb2.RequestMagicLinkResponse:
        await self._services.magic_links.request(request.email, current_call(), request)
        return identity_pb2.RequestMagicLinkResponse()

    async def RedeemMagicLink(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.RedeemMagicLinkRequest, context: Context
    ) -> identity_pb2.RedeemMagicLinkResponse:
        outcome = await self._services.magic_links.redeem(
            request.token, request.device_token, current_call(), request
        )
        reply = identity_pb2.RedeemMagicLinkResponse(user=user_to_proto(outcome.user))
        if outcome.second_factor is not None:
            reply.second_factor.CopyFrom(second_factor_to_proto(outcome.second_factor))
        if outcome.signed_in is not None:
            reply.session_token = outcome.signed_in.token
            reply.session.CopyFrom(session_to_proto(outcome.signed_in.session))
        return reply

    async def ListLoginHistory(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.ListLoginHistoryRequest, context: Context
    ) -> identity_pb2.ListLoginHistoryResponse:
        page = await self._services.login_history.list(
            request.user_id, request.page_size, request.page_token, current_call()
        )
        return identity_pb2.ListLoginHistoryResponse(
            events=[login_event_to_proto(event) for event in page.events],
            next_page_token=page.next_page_token,
        )
