"""The session and remembered-device cookies: HttpOnly, SameSite=lax, Secure, path /."""

from __future__ import annotations

import datetime as dt

from starlette.responses import Response

from helios.gateway.auth.cache_cookie import CACHE_COOKIE
from helios.gateway.auth.csrf import CSRF_COOKIE, new_csrf_token

__all__ = [
    "DEVICE_COOKIE",
    "DEVICE_COOKIE_MAX_AGE",
    "SESSION_COOKIE",
    "clear_session_cookie",
    "set_device_cookie",
    "set_session_cookie",
    "start_session",
]

SESSION_COOKIE = "helios_session"
DEVICE_COOKIE = "helios_device"
DEVICE_COOKIE_MAX_AGE = dt.timedelta(days=365)
"""The longest a device can be remembered (auth_config remember_device_days is 1..365): identity
decides, per its own expiry, whether a device it is shown still skips the second factor."""


def set_session_cookie(
    response: Response, token: str, expires_at: dt.datetime, *, secure: bool
) -> None:
    """Set the opaque session token so that scripts cannot read it and other sites cannot send it
    on state-changing cross-site requests."""
    max_age = max(0, int((expires_at - dt.datetime.now(dt.UTC)).total_seconds()))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    """Expire the session cookie now."""
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")


def start_session(response: Response, token: str, expires_at: dt.datetime, *, secure: bool) -> None:
    """What every route that opens a session sets: the session cookie, a fresh CSRF token for the
    session's lifetime (readable by our own pages: they echo it in a header), and no stale cache
    cookie of an earlier session."""
    set_session_cookie(response, token, expires_at, secure=secure)
    max_age = max(0, int((expires_at - dt.datetime.now(dt.UTC)).total_seconds()))
    response.set_cookie(
        CSRF_COOKIE, new_csrf_token(), max_age=max_age, path="/", secure=secure, samesite="lax"
    )
    response.delete_cookie(CACHE_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")


def set_device_cookie(response: Response, token: str, *, secure: bool) -> None:
    """Set the remembered-device token (A9): sent back as SignInRequest.device_token."""
    response.set_cookie(
        DEVICE_COOKIE,
        token,
        max_age=int(DEVICE_COOKIE_MAX_AGE.total_seconds()),
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )
