"""`/api/ws`: the authenticated, origin-checked live channel (E2); first use, a live audit tail.

Protocol (server to client only, JSON text frames):
- `{"type": "audit.event", "sequence": "<log position>", "record": <AuditRecord JSON>}` for each
  of the caller's audit rows stored after the socket opened (or after `?after_sequence=`);
- `{"type": "error", "error": {"code", "status", "message"}}` then close 1011 when the audit
  service fails.

Close codes: 1008 when the client sends a message (the channel takes none); 1011 after an
error frame; 1012 when the audit service ends the stream (it is restarting); 4401 when the
caller's signed assertion runs out (reconnect with `?after_sequence=<last sequence>`: the
handshake re-checks the session, so a revoked session loses the channel within ~a minute).

A handshake that is not allowed gets an HTTP error with the usual JSON body: 403 for a missing
or foreign Origin (cross-site WebSocket hijacking), 401 without a session, 400 for bad query
parameters.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import Collection
from typing import Any

import grpc
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from helios.gateway.auth.caller import ANONYMOUS, Caller
from helios.gateway.auth.csrf import check_origin
from helios.gateway.edge import client_ip, user_agent
from helios.gateway.errors import EdgeError, error_response, rpc_error_response
from helios.gateway.settings import GatewaySettings
from helios.gateway.transcoding.json_output import to_json
from helios.gateway.upstream import Upstream
from helios.kernel.clients import call_metadata
from helios.proto.audit.v1 import audit_pb2
from helios.proto.common.v1 import principal_pb2

__all__ = [
    "CLOSE_CLIENT_MESSAGE",
    "CLOSE_REAUTHENTICATE",
    "CLOSE_UPSTREAM_ENDED",
    "CLOSE_UPSTREAM_ERROR",
    "live_routes",
]

CLOSE_CLIENT_MESSAGE = 1008
CLOSE_UPSTREAM_ERROR = 1011
CLOSE_UPSTREAM_ENDED = 1012
CLOSE_REAUTHENTICATE = 4401

# Verifiers accept an assertion up to 5 s past its expiry (helios.kernel.principal): closing
# later than that makes the reconnect re-resolve the session rather than reuse the cached one.
_ASSERTION_GRACE = dt.timedelta(seconds=6)
_MAX_CURSOR = 2**63 - 1
_MAX_ORG_ID = 64
_WS_SCHEMES = {"ws": "http", "wss": "https"}


def _as_http(websocket: WebSocket) -> Request:
    """The handshake as an HTTP request whose scheme is what a browser puts in Origin (wss ->
    https), so the edge's Origin and client-address helpers apply unchanged."""
    scheme = _WS_SCHEMES.get(websocket.scope["scheme"], websocket.scope["scheme"])
    return Request({**websocket.scope, "type": "http", "scheme": scheme, "method": "GET"})


def _watch_request(params: QueryParams) -> audit_pb2.WatchEventsRequest:
    """WatchEventsRequest from `?org_id=&after_sequence=`; raises EdgeError (400) when invalid."""
    org_id = params.get("org_id", "")
    if len(org_id) > _MAX_ORG_ID:
        raise EdgeError(400, "INVALID_ARGUMENT", f"org_id is longer than {_MAX_ORG_ID} characters")
    after = params.get("after_sequence", "")
    if after and not (after.isascii() and after.isdigit() and len(after) <= 19):
        raise EdgeError(400, "INVALID_ARGUMENT", "after_sequence is not a log position")
    cursor = int(after) if after else 0
    if cursor > _MAX_CURSOR:
        raise EdgeError(400, "INVALID_ARGUMENT", "after_sequence is not a log position")
    return audit_pb2.WatchEventsRequest(org_id=org_id, after_sequence=cursor)


def _admit(
    websocket: WebSocket, allowed: Collection[str]
) -> tuple[Caller, audit_pb2.WatchEventsRequest]:
    """The caller and what it asked for; raises EdgeError (403 foreign or missing Origin, 401
    anonymous, 400 bad query) for a handshake that must be refused."""
    check_origin(_as_http(websocket), allowed, required=True)
    caller: Caller = websocket.scope.get("state", {}).get("caller", ANONYMOUS)
    if not caller.authenticated or caller.assertion is None:
        raise EdgeError(401, "UNAUTHENTICATED", "the live channel needs a signed-in session")
    return caller, _watch_request(websocket.query_params)


def _lifetime(assertion: principal_pb2.PrincipalAssertion) -> float:
    """Seconds the channel may stay open on this (already verified) assertion."""
    claims = principal_pb2.PrincipalClaims.FromString(assertion.claims)
    ends = claims.expires_at.ToDatetime(dt.UTC) + _ASSERTION_GRACE
    return max((ends - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)


async def _refuse(websocket: WebSocket, refusal: EdgeError) -> None:
    """Answer the handshake with an HTTP error (close 4000 + status where the server cannot)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        response = error_response(refusal.status, refusal.code, refusal.message)
        await websocket.send_denial_response(response)
    else:
        await websocket.close(code=4000 + refusal.status, reason=refusal.message)


async def _close(websocket: WebSocket, code: int, reason: str = "") -> None:
    """Close unless the client already went away."""
    if websocket.client_state is not WebSocketState.CONNECTED:
        return
    if websocket.application_state is not WebSocketState.CONNECTED:
        return
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.close(code=code, reason=reason)


async def _forward(
    websocket: WebSocket, call: grpc.aio.UnaryStreamCall[Any, audit_pb2.WatchEventsResponse]
) -> None:
    """Send each streamed row as a frame until the stream ends; raises AioRpcError when it
    fails and WebSocketDisconnect when the client is gone."""
    async for reply in call:
        frame = {"type": "audit.event", "sequence": str(reply.sequence)}
        await websocket.send_json({**frame, "record": to_json(reply.record)})


async def _until_client_speaks(websocket: WebSocket) -> bool:
    """Waits for the client's next message: False when it disconnected, True when it sent
    something (which this channel does not accept)."""
    message = await websocket.receive()
    return bool(message["type"] != "websocket.disconnect")


async def _tail(
    websocket: WebSocket, caller: Caller, request: audit_pb2.WatchEventsRequest
) -> None:
    """Run the audit tail on an accepted socket until the client leaves, the stream ends or
    fails, or the caller's assertion runs out; the gRPC call is cancelled in every case."""
    assert caller.assertion is not None
    upstream: Upstream = websocket.app.state.upstream
    http = _as_http(websocket)
    call = upstream.audit.WatchEvents(
        request,
        metadata=call_metadata(
            assertion=caller.assertion, client_ip=client_ip(http), user_agent=user_agent(http)
        ),
    )
    forward = asyncio.create_task(_forward(websocket, call))
    listen = asyncio.create_task(_until_client_speaks(websocket))
    expired = False
    try:
        async with asyncio.timeout(_lifetime(caller.assertion)):
            await asyncio.wait({forward, listen}, return_when=asyncio.FIRST_COMPLETED)
    except TimeoutError:
        expired = True
    finally:
        call.cancel()
        for task in (forward, listen):
            task.cancel()
        await asyncio.gather(forward, listen, return_exceptions=True)

    if expired:
        await _close(websocket, CLOSE_REAUTHENTICATE, "session re-check due; reconnect")
    elif listen.done() and not listen.cancelled() and listen.exception() is None:
        if listen.result():
            await _close(websocket, CLOSE_CLIENT_MESSAGE, "this channel takes no messages")
    elif forward.done() and not forward.cancelled():
        error = forward.exception()
        if error is None:
            await _close(websocket, CLOSE_UPSTREAM_ENDED, "audit stream ended; reconnect")
        elif isinstance(error, grpc.aio.AioRpcError):
            body = json.loads(bytes(rpc_error_response(error).body))
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await websocket.send_json({"type": "error", **body})
            await _close(websocket, CLOSE_UPSTREAM_ERROR, "audit stream failed")
        elif not isinstance(error, WebSocketDisconnect):
            raise error


def live_routes(settings: GatewaySettings) -> list[WebSocketRoute]:
    """The `/api/ws` route; origins besides the gateway's own come from `allowed_origins`,
    upstream stubs from `app.state.upstream`."""
    allowed = frozenset(settings.allowed_origins)

    async def live(websocket: WebSocket) -> None:
        try:
            caller, request = _admit(websocket, allowed)
        except EdgeError as refusal:
            await _refuse(websocket, refusal)
            return
        await websocket.accept()
        await _tail(websocket, caller, request)

    return [WebSocketRoute("/api/ws", live)]
