"""Cookies of a sign-in finished by a second factor (A3, A9): the session trio set in one place,
the remembered-device cookie HttpOnly, SameSite=lax, Secure, for the longest device lifetime."""

from __future__ import annotations

import datetime as dt

import pytest
from starlette.responses import Response

from helios.gateway.auth.cache_cookie import CACHE_COOKIE
from helios.gateway.auth.csrf import CSRF_COOKIE
from helios.gateway.cookies import DEVICE_COOKIE, SESSION_COOKIE, set_device_cookie, start_session

pytestmark = pytest.mark.unit

TOKEN = "hls_" + "T" * 43
DEVICE = "hld_" + "D" * 43


def _set_cookies(response: Response) -> dict[str, dict[str, str]]:
    """name -> attributes (lower-case keys; the value under '') of every Set-Cookie header."""
    found: dict[str, dict[str, str]] = {}
    for key, raw in response.raw_headers:
        if key != b"set-cookie":
            continue
        first, *rest = [part.strip() for part in raw.decode().split(";")]
        name, _, value = first.partition("=")
        attributes = {k.lower(): v for k, _, v in (part.partition("=") for part in rest)}
        found[name] = {"": value, **attributes}
    return found


def test_a3_start_session_sets_session_and_csrf_and_drops_the_cache_cookie() -> None:
    """A3/S1: the session cookie (HttpOnly) and a fresh CSRF cookie (readable by our pages) for
    the session's lifetime; a stale cache cookie is expired."""
    response = Response()
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    start_session(response, TOKEN, expires, secure=True)
    cookies = _set_cookies(response)
    assert cookies[SESSION_COOKIE][""] == TOKEN
    assert "httponly" in cookies[SESSION_COOKIE]
    assert len(cookies[CSRF_COOKIE][""]) >= 40
    assert "httponly" not in cookies[CSRF_COOKIE]
    assert 7190 <= int(cookies[CSRF_COOKIE]["max-age"]) <= 7200
    assert cookies[CACHE_COOKIE]["max-age"] == "0"


def test_a9_device_cookie_is_httponly_lax_secure_for_a_year() -> None:
    """A9: the remembered-device token is invisible to scripts, not sent on cross-site posts,
    and outlives any lifetime identity may give a device (365 days)."""
    response = Response()
    set_device_cookie(response, DEVICE, secure=True)
    cookie = _set_cookies(response)[DEVICE_COOKIE]
    assert cookie[""] == DEVICE
    assert "httponly" in cookie
    assert "secure" in cookie
    assert cookie["samesite"] == "lax"
    assert cookie["path"] == "/"
    assert cookie["max-age"] == str(365 * 24 * 3600)


def test_a9_device_cookie_secure_flag_follows_the_setting() -> None:
    """A9: plain-HTTP development turns Secure off, nothing else."""
    response = Response()
    set_device_cookie(response, DEVICE, secure=False)
    cookie = _set_cookies(response)[DEVICE_COOKIE]
    assert "secure" not in cookie
    assert "httponly" in cookie
