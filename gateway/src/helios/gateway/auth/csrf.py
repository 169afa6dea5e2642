"""CSRF defence for cookie-authenticated requests: allowed Origin plus a double-submit token."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.requests import Request

from helios.gateway.errors import EdgeError

__all__ = ["CSRF_COOKIE", "CSRF_HEADER", "check_csrf", "check_origin", "new_csrf_token"]

CSRF_COOKIE = "helios_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_csrf_token() -> str:
    """A fresh double-submit token (256 random bits)."""
    return secrets.token_urlsafe(32)


def _origin_of(request: Request) -> str:
    origin = request.headers.get("origin", "")
    if origin:
        return origin
    referer = urlsplit(request.headers.get("referer", ""))
    return f"{referer.scheme}://{referer.netloc}" if referer.scheme and referer.netloc else ""


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def check_origin(request: Request, allowed: Collection[str], *, required: bool) -> None:
    """Refuse (403) a request whose Origin (or Referer) is not ours or an allowed one; a request
    with neither passes only when `required` is False."""
    origin = _origin_of(request)
    if not origin:
        if required:
            raise EdgeError(403, "PERMISSION_DENIED", "cross-site request refused: no Origin")
        return
    if origin != _own_origin(request) and origin not in allowed:
        raise EdgeError(403, "PERMISSION_DENIED", "cross-site request refused: Origin not allowed")


def check_csrf(request: Request, allowed: Collection[str]) -> None:
    """For a state-changing, cookie-authenticated request: the Origin must be allowed and the
    `X-CSRF-Token` header must equal the `helios_csrf` cookie (constant-time)."""
    if request.method in SAFE_METHODS:
        return
    check_origin(request, allowed, required=True)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    if not cookie or not header or not hmac.compare_digest(cookie, header):
        raise EdgeError(403, "PERMISSION_DENIED", "missing or wrong CSRF token")
