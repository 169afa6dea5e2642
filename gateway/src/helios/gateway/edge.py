"""Reading request bodies at the edge: size cap, JSON shape, mapping onto a request proto."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.requests import Request

from helios.gateway.errors import EdgeError

__all__ = ["client_ip", "read_message", "user_agent"]

M = TypeVar("M", bound=Message)
_MAX_DEPTH = 16


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


async def read_message(request: Request, message: M, required: tuple[str, ...], limit: int) -> M:
    """Fill `message` from the JSON body; raises EdgeError (400/413/415) with a clear message for
    an oversized, non-JSON, malformed, too deeply nested, mistyped or incomplete body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise EdgeError(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json")
    raw = await _read_capped(request, limit)
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgeError(400, "INVALID_ARGUMENT", f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise EdgeError(
            400, "INVALID_ARGUMENT", f"body nests deeper than {_MAX_DEPTH} levels"
        ) from None
    if not isinstance(body, dict):
        raise EdgeError(400, "INVALID_ARGUMENT", "body must be a JSON object")
    if _depth(body) > _MAX_DEPTH:
        raise EdgeError(400, "INVALID_ARGUMENT", f"body nests deeper than {_MAX_DEPTH} levels")
    missing = [name for name in required if body.get(name) in (None, "")]
    if missing:
        raise EdgeError(400, "INVALID_ARGUMENT", f"missing required field(s): {', '.join(missing)}")
    try:
        json_format.ParseDict(body, message)
    except json_format.ParseError as exc:
        raise EdgeError(400, "INVALID_ARGUMENT", f"invalid field: {exc}") from None
    return message


def client_ip(request: Request) -> str:
    """The peer address (trusted-proxy headers are believed only once issue #3 lands)."""
    return request.client.host if request.client else ""


def user_agent(request: Request) -> str:
    """The User-Agent header, capped at 512 characters."""
    return request.headers.get("user-agent", "")[:512]
