"""The session cookie: HttpOnly, SameSite=lax, Secure, path /."""

from __future__ import annotations

import datetime as dt

from starlette.responses import Response

__all__ = ["SESSION_COOKIE", "clear_session_cookie", "set_session_cookie"]

SESSION_COOKIE = "helios_session"


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
