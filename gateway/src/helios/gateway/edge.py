"""The edge's view of a request: body (size cap, JSON shape, request proto), client address and
location, and the call metadata that carries them to services."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.requests import Request

from helios.gateway.errors import EdgeError
from helios.gateway.proxies import ClientAddress, TrustedProxies
from helios.kernel.clients import call_metadata
from helios.proto.common.v1 import principal_pb2

__all__ = [
    "NO_BODY",
    "client_address",
    "client_ip",
    "client_metadata",
    "read_json",
    "read_message",
    "user_agent",
]

M = TypeVar("M", bound=Message)
_MAX_DEPTH = 16
# What read_json returns for a request without a body (JSON `null` is a body).
NO_BODY: Any = object()


def _depth(value: Any, level: int = 0) -> int:
    if level > _MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise EdgeError(400, "INVALID_ARGUMENT", "Content-Length is not a number")
        if int(declared) > limit:
            raise EdgeError(413, "PAYLOAD_TOO_LARGE", f"request body exceeds {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise EdgeError(413, "PAYLOAD_TOO_LARGE", f"request body exceeds {limit} bytes")
    return bytes(body)


async def read_json(request: Request, limit: int) -> Any:
    """The JSON body (NO_BODY when the request has none); raises EdgeError (400/413/415) for an
    oversized, non-JSON, malformed or too deeply nested body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await _read_capped(request, limit)
    if not raw and not content_type:
        return NO_BODY
    if content_type != "application/json":
        raise EdgeError(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgeError(400, "INVALID_ARGUMENT", f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise EdgeError(
            400, "INVALID_ARGUMENT", f"body nests deeper than {_MAX_DEPTH} levels"
        ) from None
    if _depth(body) > _MAX_DEPTH:
        raise EdgeError(400, "INVALID_ARGUMENT", f"body nests deeper than {_MAX_DEPTH} levels")
    return body


async def read_message(request: Request, message: M, required: tuple[str, ...], limit: int) -> M:
    """Fill `message` from the JSON body; raises EdgeError (400/413/415) with a clear message for
    an oversized, non-JSON, malformed, too deeply nested, mistyped or incomplete body."""
    body = await read_json(request, limit)
    if body is NO_BODY:
        raise EdgeError(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json")
    if not isinstance(body, dict):
        raise EdgeError(400, "INVALID_ARGUMENT", "body must be a JSON object")
    missing = [name for name in required if body.get(name) in (None, "")]
    if missing:
        raise EdgeError(400, "INVALID_ARGUMENT", f"missing required field(s): {', '.join(missing)}")
    try:
        json_format.ParseDict(body, message)
    except json_format.ParseError as exc:
        raise EdgeError(400, "INVALID_ARGUMENT", f"invalid field: {exc}") from None
    return message


def client_address(request: Request) -> ClientAddress:
    """The client per the app's `state.trusted_proxies`; without one (a bare scope) the TCP peer,
    forwarding headers ignored."""
    peer = request.client.host if request.client else ""
    app = request.scope.get("app")
    proxies = getattr(getattr(app, "state", None), "trusted_proxies", None)
    if not isinstance(proxies, TrustedProxies):
        return ClientAddress(ip=peer)
    return proxies.client_address(peer, request.headers)


def client_ip(request: Request) -> str:
    """The client's IP address: the TCP peer, or what a trusted proxy reported for it."""
    return client_address(request).ip


def user_agent(request: Request) -> str:
    """The User-Agent header, capped at 512 characters."""
    return request.headers.get("user-agent", "")[:512]


def client_metadata(
    request: Request, assertion: principal_pb2.PrincipalAssertion | None = None
) -> tuple[tuple[str, str | bytes], ...]:
    """Metadata of a call made for `request`: the principal's assertion (when given), the client's
    IP and user agent, and its city and country when a trusted proxy reported them (S4; a client
    that sends CF-IPCity itself gets none)."""
    address = client_address(request)
    return call_metadata(
        assertion=assertion,
        client_ip=address.ip,
        user_agent=user_agent(request),
        city=address.city,
        country=address.country,
    )
