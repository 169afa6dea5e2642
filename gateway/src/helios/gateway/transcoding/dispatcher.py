"""The one route that serves every annotated RPC: match, authenticate, build, call, answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import grpc
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from helios.gateway.auth.caller import Caller
from helios.gateway.edge import NO_BODY, client_metadata, read_json
from helios.gateway.errors import EdgeError, error_response, rpc_error_response
from helios.gateway.metrics import ROUTE_KEY
from helios.gateway.transcoding.catalog import HttpBinding
from helios.gateway.transcoding.json_output import to_json
from helios.gateway.transcoding.request_builder import build_request
from helios.gateway.upstream import Upstream

__all__ = ["TRANSCODED_PREFIX", "AfterSuccess", "transcoding_route"]

AfterSuccess = Callable[[Message], None]
"""Told the request of a unary RPC that succeeded, before the client gets the answer."""

TRANSCODED_PREFIX = "/api/v1/"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _find(
    bindings: Sequence[HttpBinding], verb: str, path: str
) -> tuple[HttpBinding, dict[str, str]]:
    allowed = False
    for binding in bindings:
        values = binding.template.match(path)
        if values is None:
            continue
        if binding.verb == verb:
            return binding, values
        allowed = True
    if allowed:
        raise EdgeError(405, "METHOD_NOT_ALLOWED", f"{verb} is not allowed on {path}")
    raise EdgeError(404, "NOT_FOUND", f"no route for {verb} {path}")


async def _stream(first: Any, call: Any) -> AsyncIterator[bytes]:
    """NDJSON lines: the first reply (already read), then the rest; a failure after the first
    line becomes a final `{"error": ...}` line (the status line has been sent by then)."""
    reply = first
    try:
        while reply is not grpc.aio.EOF:
            yield (json.dumps(to_json(reply)) + "\n").encode()
            reply = await call.read()
    except grpc.aio.AioRpcError as exc:
        error = json.loads(bytes(rpc_error_response(exc).body))
        yield (json.dumps(error) + "\n").encode()


def transcoding_route(
    bindings: Sequence[HttpBinding],
    max_body_bytes: int,
    after_success: Mapping[str, AfterSuccess] | None = None,
) -> Route:
    """A catch-all route under /api/v1/ dispatching to the binding that matches; for an RPC
    path (`/pkg.Service/Method`) in `after_success`, its hook sees each successful request."""
    hooks = dict(after_success or {})

    async def dispatch(request: Request) -> Response:
        upstream: Upstream = request.app.state.upstream
        caller: Caller = request.state.caller
        try:
            binding, path_values = _find(bindings, request.method, request.url.path)
            request.scope.setdefault("state", {})[ROUTE_KEY] = binding.template.template
            if not binding.public and not caller.authenticated:
                raise EdgeError(401, "UNAUTHENTICATED", "sign in first")
            body = await read_json(request, max_body_bytes)
            if body is NO_BODY:
                body = {} if binding.body == "*" else None
            message: Message = build_request(
                binding.request_class()(),
                binding.body,
                body,
                path_values,
                list(request.query_params.multi_items()),
            )
        except EdgeError as exc:
            return error_response(exc.status, exc.code, exc.message)
        channel = upstream.channel(binding.upstream)
        metadata = client_metadata(request, caller.assertion)
        response_class = binding.response_class()
        if binding.server_streaming:
            opener: Any = channel.unary_stream(
                binding.rpc_path,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=response_class.FromString,
            )
            stream = opener(message, metadata=metadata, timeout=upstream.timeout)
            try:
                first = await stream.read()  # a call that fails at once gets a proper status
            except grpc.aio.AioRpcError as exc:
                return rpc_error_response(exc)
            return StreamingResponse(_stream(first, stream), media_type="application/x-ndjson")
        call: Any = channel.unary_unary(
            binding.rpc_path,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        try:
            reply = await call(message, metadata=metadata, timeout=upstream.timeout)
        except grpc.aio.AioRpcError as exc:
            return rpc_error_response(exc)
        hook = hooks.get(binding.rpc_path)
        if hook is not None:
            hook(message)
        return JSONResponse(to_json(reply))

    return Route(TRANSCODED_PREFIX + "{rest:path}", dispatch, methods=_METHODS)
