"""Security headers on every gateway response (S1: HSTS; plus CSP and friends)."""

from __future__ import annotations

import pytest
from starlette.types import Message, Receive, Scope, Send

from helios.gateway.headers import SecurityHeaders

pytestmark = pytest.mark.unit

HSTS = b"max-age=63072000; includeSubDomains; preload"


def _app(status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> SecurityHeaders:
    """The middleware around a tiny ASGI app that answers with `status`, `headers` and a body
    sent in two parts."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": status, "headers": list(headers or [])}
        )
        await send({"type": "http.response.body", "body": b"hel", "more_body": True})
        await send({"type": "http.response.body", "body": b"lo", "more_body": False})

    return SecurityHeaders(app)


async def _call(app: SecurityHeaders, path: str = "/api/v1/thing") -> list[Message]:
    scope: Scope = {"type": "http", "method": "GET", "path": path, "headers": []}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _headers(messages: list[Message]) -> list[tuple[bytes, bytes]]:
    start = messages[0]
    assert start["type"] == "http.response.start"
    return list(start["headers"])


def _values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key.lower() == name]


@pytest.mark.parametrize("status", [200, 302, 404, 500])
@pytest.mark.parametrize("path", ["/", "/api/v1/thing", "/api/auth/sign-in", "/.well-known/x"])
async def test_s1_hsts_header_on_every_response(status: int, path: str) -> None:
    headers = _headers(await _call(_app(status), path))
    assert _values(headers, b"strict-transport-security") == [HSTS]


async def test_s1_strict_browser_headers_on_every_response() -> None:
    headers = _headers(await _call(_app()))
    csp = _values(headers, b"content-security-policy")
    assert len(csp) == 1
    assert b"default-src 'none'" in csp[0]
    assert b"frame-ancestors 'none'" in csp[0]
    assert _values(headers, b"x-content-type-options") == [b"nosniff"]
    assert _values(headers, b"referrer-policy") == [b"no-referrer"]
    assert _values(headers, b"x-frame-options") == [b"DENY"]
    assert _values(headers, b"cross-origin-opener-policy") == [b"same-origin"]
    assert b"camera=()" in _values(headers, b"permissions-policy")[0]


async def test_s1_header_set_by_the_app_is_kept_not_duplicated() -> None:
    own_csp = b"default-src 'self'"
    app = _app(headers=[(b"Content-Security-Policy", own_csp), (b"content-type", b"text/html")])
    headers = _headers(await _call(app))
    assert _values(headers, b"content-security-policy") == [own_csp]
    assert _values(headers, b"content-type") == [b"text/html"]
    assert _values(headers, b"strict-transport-security") == [HSTS]


async def test_s1_auth_responses_are_never_cached() -> None:
    app = _app(headers=[(b"Cache-Control", b"public, max-age=3600")])
    headers = _headers(await _call(app, "/api/auth/session"))
    assert _values(headers, b"cache-control") == [b"no-store"]


async def test_s1_other_responses_keep_their_cache_policy() -> None:
    app = _app(headers=[(b"cache-control", b"public, max-age=60")])
    headers = _headers(await _call(app, "/api/v1/permissions"))
    assert _values(headers, b"cache-control") == [b"public, max-age=60"]
    assert _values(_headers(await _call(_app(), "/api/authz")), b"cache-control") == []


async def test_s1_body_passes_through_unchanged_and_unbuffered() -> None:
    messages = await _call(_app())
    assert [m["type"] for m in messages] == [
        "http.response.start",
        "http.response.body",
        "http.response.body",
    ]
    assert [m["body"] for m in messages[1:]] == [b"hel", b"lo"]
    assert messages[1]["more_body"] is True


async def test_s1_non_http_scopes_pass_through_untouched() -> None:
    seen: list[Scope] = []
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await send({"type": "lifespan.startup.complete"})

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "lifespan"}
    await SecurityHeaders(app)(scope, receive, send)
    assert seen == [scope]
    assert sent == [{"type": "lifespan.startup.complete"}]
