"""`/api/auth/*`: sign-up, sign-in (password or magic link), its second factor and sign-out (they
set and clear cookies), current session."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from helios.gateway.auth.cache_cookie import CACHE_COOKIE
from helios.gateway.auth.caller import Caller
from helios.gateway.auth.csrf import CSRF_COOKIE
from helios.gateway.cookies import DEVICE_COOKIE, SESSION_COOKIE, set_device_cookie, start_session
from helios.gateway.edge import client_metadata, read_message
from helios.gateway.errors import EdgeError, error_response, rpc_error_response
from helios.gateway.routes.impersonation import clear_admin_cookie
from helios.gateway.settings import GatewaySettings
from helios.gateway.upstream import Upstream
from helios.kernel.canonical import public_dict
from helios.proto.identity.v1 import identity_pb2

__all__ = ["auth_routes"]


def _json(message: Message, status: int = 200) -> JSONResponse:
    return JSONResponse(public_dict(message), status_code=status)


def _metadata(
    request: Request, caller: Caller | None = None
) -> tuple[tuple[str, str | bytes], ...]:
    return client_metadata(request, caller.assertion if caller else None)


def _challenge(second_factor: identity_pb2.SecondFactorChallenge) -> JSONResponse:
    """No session yet (A3): the client answers the challenge at /api/auth/second-factor with its
    token, which public_dict would leave out (secret) and is returned on purpose."""
    challenge = public_dict(second_factor)
    challenge["challenge_token"] = second_factor.challenge_token
    return JSONResponse({"second_factor": challenge})


def auth_routes(settings: GatewaySettings) -> list[Route]:
    """The routes, bound to the settings; upstream stubs come from `app.state.upstream`."""
    secure = settings.cookie_secure

    async def call(
        request: Request,
        blank: Message,
        required: tuple[str, ...],
        rpc: Callable[[Any], Any],
        *,
        first_factor: bool = False,
    ) -> Any:
        """Read `blank` from the body and call `rpc(identity stub)` with it: the reply, or the
        error Response. A first factor carries the remembered-device cookie (A9): it skips the
        second factor."""
        upstream: Upstream = request.app.state.upstream
        try:
            message = await read_message(request, blank, required, settings.max_body_bytes)
            if first_factor:
                token = request.cookies.get(DEVICE_COOKIE, "")
                message.device_token = message.device_token or token  # type: ignore[attr-defined]
            return await rpc(upstream.identity)(
                message, metadata=_metadata(request), timeout=upstream.timeout
            )
        except EdgeError as exc:
            return error_response(exc.status, exc.code, exc.message)
        except grpc.aio.AioRpcError as exc:
            return rpc_error_response(exc)

    def opened(reply: Any) -> Response:
        """The session cookies for a reply that opened a session, or the challenge of one that
        needs a second factor first (A3; no cookie then)."""
        if isinstance(reply, Response):
            return reply
        if reply.HasField("second_factor"):
            return _challenge(reply.second_factor)
        response = _json(reply)  # the token field is marked secret: public_dict leaves it out
        expires = reply.session.expires_at.ToDatetime(dt.UTC)
        start_session(response, reply.session_token, expires, secure=secure)
        return response

    async def sign_up(request: Request) -> Response:
        reply = await call(
            request, identity_pb2.SignUpRequest(), ("email", "password"), lambda i: i.SignUp
        )
        return reply if isinstance(reply, Response) else _json(reply, 201)

    async def sign_in(request: Request) -> Response:
        reply = await call(
            request,
            identity_pb2.SignInRequest(),
            ("email", "password"),
            lambda i: i.SignIn,
            first_factor=True,
        )
        return opened(reply)

    async def magic_link(request: Request) -> Response:
        reply = await call(
            request,
            identity_pb2.RedeemMagicLinkRequest(),
            ("token",),
            lambda i: i.RedeemMagicLink,
            first_factor=True,
        )
        return opened(reply)

    async def second_factor(request: Request) -> Response:
        reply = await call(
            request,
            identity_pb2.CompleteSecondFactorRequest(),
            ("challenge_token", "method"),
            lambda i: i.CompleteSecondFactor,
        )
        if isinstance(reply, Response):
            return reply
        response = _json(reply)
        expires = reply.session.expires_at.ToDatetime(dt.UTC)
        start_session(response, reply.session_token, expires, secure=secure)
        if reply.device_token:
            set_device_cookie(response, reply.device_token, secure=secure)
        return response

    async def sign_out(request: Request) -> Response:
        upstream: Upstream = request.app.state.upstream
        caller: Caller = request.state.caller
        if caller.authenticated:
            try:
                await upstream.identity.SignOut(
                    identity_pb2.SignOutRequest(),
                    metadata=_metadata(request, caller),
                    timeout=upstream.timeout,
                )
            except grpc.aio.AioRpcError as exc:
                return rpc_error_response(exc)
        response = Response(status_code=204)
        for name in (SESSION_COOKIE, CACHE_COOKIE, CSRF_COOKIE):
            response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
        clear_admin_cookie(response, secure=secure)  # an admin's session set aside (S6)
        return response

    async def current_session(request: Request) -> Response:
        upstream: Upstream = request.app.state.upstream
        caller: Caller = request.state.caller
        if not caller.authenticated:
            return error_response(401, "UNAUTHENTICATED", "not signed in")
        try:
            reply = await upstream.identity.GetCurrentUser(
                identity_pb2.GetCurrentUserRequest(),
                metadata=_metadata(request, caller),
                timeout=upstream.timeout,
            )
        except grpc.aio.AioRpcError as exc:
            return rpc_error_response(exc)
        return _json(reply)

    return [
        Route("/api/auth/sign-up", sign_up, methods=["POST"]),
        Route("/api/auth/sign-in", sign_in, methods=["POST"]),
        Route("/api/auth/magic-link", magic_link, methods=["POST"]),
        Route("/api/auth/second-factor", second_factor, methods=["POST"]),
        Route("/api/auth/sign-out", sign_out, methods=["POST"]),
        Route("/api/auth/session", current_session, methods=["GET"]),
    ]
