"""`/api/auth/*`: sign-up, sign-in and sign-out (they set and clear cookies), current session."""

from __future__ import annotations

import datetime as dt

import grpc
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from helios.gateway.auth.cache_cookie import CACHE_COOKIE
from helios.gateway.auth.caller import Caller
from helios.gateway.auth.csrf import CSRF_COOKIE, new_csrf_token
from helios.gateway.cookies import SESSION_COOKIE, set_session_cookie
from helios.gateway.edge import client_ip, read_message, user_agent
from helios.gateway.errors import EdgeError, error_response, rpc_error_response
from helios.gateway.settings import GatewaySettings
from helios.gateway.upstream import Upstream
from helios.kernel.canonical import public_dict
from helios.kernel.clients import call_metadata
from helios.proto.identity.v1 import identity_pb2

__all__ = ["auth_routes"]


def _json(message: Message, status: int = 200) -> JSONResponse:
    return JSONResponse(public_dict(message), status_code=status)


def _metadata(
    request: Request, caller: Caller | None = None
) -> tuple[tuple[str, str | bytes], ...]:
    return call_metadata(
        assertion=caller.assertion if caller else None,
        client_ip=client_ip(request),
        user_agent=user_agent(request),
    )


def auth_routes(settings: GatewaySettings) -> list[Route]:
    """The routes, bound to the settings; upstream stubs come from `app.state.upstream`."""
    secure = settings.cookie_secure

    async def sign_up(request: Request) -> Response:
        upstream: Upstream = request.app.state.upstream
        try:
            message = await read_message(
                request,
                identity_pb2.SignUpRequest(),
                ("email", "password"),
                settings.max_body_bytes,
            )
            reply = await upstream.identity.SignUp(
                message, metadata=_metadata(request), timeout=upstream.timeout
            )
        except EdgeError as exc:
            return error_response(exc.status, exc.code, exc.message)
        except grpc.aio.AioRpcError as exc:
            return rpc_error_response(exc)
        return _json(reply, 201)

    async def sign_in(request: Request) -> Response:
        upstream: Upstream = request.app.state.upstream
        try:
            message = await read_message(
                request,
                identity_pb2.SignInRequest(),
                ("email", "password"),
                settings.max_body_bytes,
            )
            reply = await upstream.identity.SignIn(
                message, metadata=_metadata(request), timeout=upstream.timeout
            )
        except EdgeError as exc:
            return error_response(exc.status, exc.code, exc.message)
        except grpc.aio.AioRpcError as exc:
            return rpc_error_response(exc)
        response = _json(reply)  # the token field is marked secret: public_dict leaves it out
        expires = reply.session.expires_at.ToDatetime(dt.UTC)
        set_session_cookie(response, reply.session_token, expires, secure=secure)
        # The CSRF token is readable by our own pages (not HttpOnly): they echo it in a header.
        max_age = max(0, int((expires - dt.datetime.now(dt.UTC)).total_seconds()))
        response.set_cookie(
            CSRF_COOKIE, new_csrf_token(), max_age=max_age, path="/", secure=secure, samesite="lax"
        )
        response.delete_cookie(CACHE_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
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
        Route("/api/auth/sign-out", sign_out, methods=["POST"]),
        Route("/api/auth/session", current_session, methods=["GET"]),
    ]
