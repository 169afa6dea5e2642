"""`/api/auth/impersonate` and `/api/auth/impersonate/stop` (S6): the admin's own session token
waits in an HttpOnly cookie sent only to these two paths while the session cookie holds the
impersonation; stopping revokes the impersonation and puts the admin's session back."""

from __future__ import annotations

import datetime as dt

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from helios.gateway.auth.cache_cookie import CACHE_COOKIE
from helios.gateway.auth.caller import Caller
from helios.gateway.auth.csrf import check_csrf
from helios.gateway.cookies import SESSION_COOKIE, clear_session_cookie, set_session_cookie
from helios.gateway.edge import client_metadata, read_message
from helios.gateway.errors import EdgeError, error_response, rpc_error_response
from helios.gateway.settings import GatewaySettings
from helios.gateway.upstream import Upstream
from helios.kernel.canonical import public_dict
from helios.proto.identity.v1 import identity_pb2

__all__ = ["ADMIN_COOKIE", "ADMIN_COOKIE_PATH", "clear_admin_cookie", "impersonation_routes"]

ADMIN_COOKIE = "helios_admin_session"
ADMIN_COOKIE_PATH = "/api/auth/impersonate"
_GRACE = dt.timedelta(hours=1)
"""How long after the impersonation ends the admin's token is kept to return to it."""


def clear_admin_cookie(response: Response, *, secure: bool) -> None:
    """Forget the admin's set-aside session token."""
    response.delete_cookie(
        ADMIN_COOKIE, path=ADMIN_COOKIE_PATH, secure=secure, httponly=True, samesite="lax"
    )


def impersonation_routes(settings: GatewaySettings) -> list[Route]:
    """The routes, bound to the settings; upstream stubs come from `app.state.upstream`."""
    secure = settings.cookie_secure

    async def start(request: Request) -> Response:
        upstream: Upstream = request.app.state.upstream
        caller: Caller = request.state.caller
        own_token = request.cookies.get(SESSION_COOKIE, "")
        if not caller.authenticated:
            return error_response(401, "UNAUTHENTICATED", "sign in first")
        if caller.via != "session" or not own_token:
            return error_response(
                400, "FAILED_PRECONDITION", "impersonation needs a signed-in browser session"
            )
        try:
            message = await read_message(
                request,
                identity_pb2.StartImpersonationRequest(),
                ("user_id", "reason"),
                settings.max_body_bytes,
            )
            reply = await upstream.identity.StartImpersonation(
                message,
                metadata=client_metadata(request, caller.assertion),
                timeout=upstream.timeout,
            )
        except EdgeError as exc:
            return error_response(exc.status, exc.code, exc.message)
        except grpc.aio.AioRpcError as exc:
            return rpc_error_response(exc)
        response = JSONResponse(public_dict(reply))  # the token is secret: left out
        expires = reply.session.expires_at.ToDatetime(dt.UTC)
        response.set_cookie(
            ADMIN_COOKIE,
            own_token,
            max_age=int((expires + _GRACE - dt.datetime.now(dt.UTC)).total_seconds()),
            path=ADMIN_COOKIE_PATH,
            secure=secure,
            httponly=True,
            samesite="lax",
        )
        set_session_cookie(response, reply.session_token, expires, secure=secure)
        response.delete_cookie(CACHE_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
        return response

    async def stop(request: Request) -> Response:
        upstream: Upstream = request.app.state.upstream
        caller: Caller = request.state.caller
        admin_token = request.cookies.get(ADMIN_COOKIE, "")
        try:
            # also when the impersonation already ended and the caller is anonymous
            check_csrf(request, settings.allowed_origins)
        except EdgeError as exc:
            return error_response(exc.status, exc.code, exc.message)
        impersonating = caller.principal is not None and bool(caller.principal.impersonator_id)
        if not impersonating and not admin_token:
            return error_response(400, "FAILED_PRECONDITION", "you are not impersonating anyone")
        if impersonating:
            try:
                await upstream.identity.StopImpersonation(
                    identity_pb2.StopImpersonationRequest(),
                    metadata=client_metadata(request, caller.assertion),
                    timeout=upstream.timeout,
                )
            except grpc.aio.AioRpcError as exc:
                return rpc_error_response(exc)
        try:
            own = await upstream.identity.ResolveSession(
                identity_pb2.ResolveSessionRequest(session_token=admin_token),
                metadata=client_metadata(request),
                timeout=upstream.timeout,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAUTHENTICATED:
                return rpc_error_response(exc)
            response: Response = error_response(
                401, "UNAUTHENTICATED", "the impersonation ended; sign in again"
            )
            clear_session_cookie(response, secure=secure)
        else:
            current = identity_pb2.GetCurrentUserResponse(user=own.user, session=own.session)
            response = JSONResponse(public_dict(current))
            set_session_cookie(
                response, admin_token, own.session.expires_at.ToDatetime(dt.UTC), secure=secure
            )
        clear_admin_cookie(response, secure=secure)
        response.delete_cookie(CACHE_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
        return response

    return [
        Route(ADMIN_COOKIE_PATH, start, methods=["POST"]),
        Route(ADMIN_COOKIE_PATH + "/stop", stop, methods=["POST"]),
    ]
