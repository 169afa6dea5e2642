"""`/api/auth/*`: sign-up, sign-in (sets the session cookie) and the current session."""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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


def auth_routes(settings: GatewaySettings) -> list[Route]:
    """The routes, bound to the settings; upstream stubs come from `app.state.upstream`."""

    def metadata(request: Request) -> tuple[tuple[str, str | bytes], ...]:
        return call_metadata(client_ip=client_ip(request), user_agent=user_agent(request))

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
                message, metadata=metadata(request), timeout=upstream.timeout
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
                message, metadata=metadata(request), timeout=upstream.timeout
            )
        except EdgeError as exc:
            return error_response(exc.status, exc.code, exc.message)
        except grpc.aio.AioRpcError as exc:
            return rpc_error_response(exc)
        response = _json(reply)  # the token field is marked secret: public_dict leaves it out
        set_session_cookie(
            response,
            reply.session_token,
            reply.session.expires_at.ToDatetime(dt.UTC),
            secure=settings.cookie_secure,
        )
        return response

    async def current_session(request: Request) -> Response:
        upstream: Upstream = request.app.state.upstream
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            return error_response(401, "UNAUTHENTICATED", "not signed in")
        try:
            reply = await upstream.identity.ResolveSession(
                identity_pb2.ResolveSessionRequest(session_token=token),
                metadata=metadata(request),
                timeout=upstream.timeout,
            )
        except grpc.aio.AioRpcError as exc:
            return rpc_error_response(exc)
        body: dict[str, Any] = {
            "user": json_format.MessageToDict(reply.user, preserving_proto_field_name=True),
            "session": json_format.MessageToDict(reply.session, preserving_proto_field_name=True),
        }
        return JSONResponse(body)

    return [
        Route("/api/auth/sign-up", sign_up, methods=["POST"]),
        Route("/api/auth/sign-in", sign_in, methods=["POST"]),
        Route("/api/auth/session", current_session, methods=["GET"]),
    ]
