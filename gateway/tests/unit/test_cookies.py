"""The session cookie: HttpOnly, SameSite=lax, Secure, path / (S1)."""

from __future__ import annotations

import datetime as dt

import pytest
from starlette.responses import Response

from helios.gateway.cookies import SESSION_COOKIE, clear_session_cookie, set_session_cookie

pytestmark = pytest.mark.unit

TOKEN = "hls_" + "T" * 43


def _set_cookie(response: Response) -> str:
    values = [v.decode() for k, v in response.raw_headers if k == b"set-cookie"]
    assert len(values) == 1
    return values[0]


def _attributes(header: str) -> dict[str, str]:
    parts = [part.strip() for part in header.split(";")]
    return {name.lower(): value for name, _, value in (part.partition("=") for part in parts[1:])}


def test_s1_session_cookie_is_httponly_samesite_lax_secure() -> None:
    response = Response()
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    set_session_cookie(response, TOKEN, expires, secure=True)
    header = _set_cookie(response)
    assert header.startswith(f"{SESSION_COOKIE}={TOKEN};")
    attributes = _attributes(header)
    assert "httponly" in attributes
    assert "secure" in attributes
    assert attributes["samesite"] == "lax"
    assert attributes["path"] == "/"
    assert 3590 <= int(attributes["max-age"]) <= 3600


def test_s1_cookie_max_age_never_negative_for_past_expiry() -> None:
    response = Response()
    set_session_cookie(
        response, TOKEN, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), secure=True
    )
    assert _attributes(_set_cookie(response))["max-age"] == "0"


def test_s1_secure_flag_can_be_off_for_plain_http_dev() -> None:
    response = Response()
    set_session_cookie(
        response, TOKEN, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5), secure=False
    )
    attributes = _attributes(_set_cookie(response))
    assert "secure" not in attributes
    assert "httponly" in attributes


def test_s3_clearing_the_cookie_expires_it_now() -> None:
    response = Response()
    clear_session_cookie(response, secure=True)
    header = _set_cookie(response)
    assert header.startswith((f'{SESSION_COOKIE}="";', f"{SESSION_COOKIE}=;"))
    attributes = _attributes(header)
    assert attributes["max-age"] == "0"
    assert "httponly" in attributes
    assert "secure" in attributes
    assert attributes["samesite"] == "lax"
    assert attributes["path"] == "/"
