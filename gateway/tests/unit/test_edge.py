"""Validating request bodies at the edge: size, media type, JSON shape, proto mapping (P2)."""

from __future__ import annotations

import json

import pytest
from starlette.requests import Request
from starlette.types import Message

from helios.gateway.edge import client_ip, read_message, user_agent
from helios.gateway.errors import EdgeError
from helios.proto.identity.v1 import identity_pb2

pytestmark = pytest.mark.unit

LIMIT = 1024
REQUIRED = ("email", "password")


def _request(
    chunks: list[bytes],
    *,
    content_type: str | None = "application/json",
    content_length: str | None = "auto",
    extra_headers: list[tuple[bytes, bytes]] | None = None,
    client: tuple[str, int] | None = ("198.51.100.4", 51000),
) -> Request:
    """A Request over an ASGI scope whose receive callable yields `chunks` as the body."""
    headers = list(extra_headers or [])
    if content_type is not None:
        headers.append((b"content-type", content_type.encode()))
    if content_length == "auto":
        headers.append((b"content-length", str(sum(map(len, chunks))).encode()))
    elif content_length is not None:
        headers.append((b"content-length", content_length.encode()))
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/api/auth/sign-in",
        "raw_path": b"/api/auth/sign-in",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": client,
        "server": ("gateway", 443),
    }
    pending = list(chunks) or [b""]

    async def receive() -> Message:
        body = pending.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    return Request(scope, receive)


def _json(value: object) -> list[bytes]:
    return [json.dumps(value).encode()]


async def _read(request: Request) -> identity_pb2.SignInRequest:
    return await read_message(request, identity_pb2.SignInRequest(), REQUIRED, LIMIT)


async def _refusal(request: Request) -> EdgeError:
    with pytest.raises(EdgeError) as refused:
        await _read(request)
    return refused.value


async def test_p2_valid_json_fills_the_request_proto() -> None:
    request = _request(_json({"email": "ada@example.com", "password": "correct horse battery"}))
    message = await _read(request)
    assert message.email == "ada@example.com"
    assert message.password == "correct horse battery"


async def test_p2_body_in_several_chunks_is_joined() -> None:
    raw = json.dumps({"email": "ada@example.com", "password": "p" * 12}).encode()
    request = _request([raw[:7], raw[7:20], raw[20:]], content_length=None)
    assert (await _read(request)).password == "p" * 12


async def test_p2_content_type_with_charset_accepted() -> None:
    request = _request(
        _json({"email": "a@b.io", "password": "x" * 10}),
        content_type="Application/JSON; charset=utf-8",
    )
    assert (await _read(request)).email == "a@b.io"


async def test_p2_malformed_json_refused_with_400() -> None:
    error = await _refusal(_request([b'{"email": "a@b.io", "password": ']))
    assert (error.status, error.code) == (400, "INVALID_ARGUMENT")
    assert "not valid JSON" in error.message


async def test_p2_non_utf8_body_refused_with_400() -> None:
    error = await _refusal(_request([b'{"email": "\xff\xfe"}']))
    assert error.status == 400
    assert "not valid JSON" in error.message


@pytest.mark.parametrize("body", [[1, 2], "text", 42, None, True])
async def test_p2_non_object_body_refused_with_400(body: object) -> None:
    error = await _refusal(_request(_json(body)))
    assert (error.status, error.code) == (400, "INVALID_ARGUMENT")
    assert error.message == "body must be a JSON object"


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"email": "a@b.io"}, "password"),
        ({"password": "x" * 10}, "email"),
        ({"email": "", "password": "x" * 10}, "email"),
        ({"email": None, "password": "x" * 10}, "email"),
        ({}, "email, password"),
    ],
)
async def test_p2_missing_field_refused_naming_the_field(
    body: dict[str, object], missing: str
) -> None:
    error = await _refusal(_request(_json(body)))
    assert (error.status, error.code) == (400, "INVALID_ARGUMENT")
    assert error.message == f"missing required field(s): {missing}"


async def test_p2_oversized_declared_body_refused_with_413_before_reading() -> None:
    reads = 0

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"{}", "more_body": False}

    request = _request([b"{}"], content_length=str(LIMIT + 1))
    request = Request(request.scope, receive)
    error = await _refusal(request)
    assert (error.status, error.code) == (413, "PAYLOAD_TOO_LARGE")
    assert str(LIMIT) in error.message
    assert reads == 0


async def test_p2_oversized_streamed_body_refused_with_413() -> None:
    """No content-length, or one that lies: the running total is capped."""
    chunks = [b'{"email": "' + b"a" * 600, b"b" * 600 + b'"}']
    for declared in (None, "10"):
        error = await _refusal(_request(chunks, content_length=declared))
        assert (error.status, error.code) == (413, "PAYLOAD_TOO_LARGE")


async def test_p2_non_numeric_content_length_refused() -> None:
    for declared in ("-1", "12a", "\u00b2"):
        error = await _refusal(_request(_json({"email": "a@b.io"}), content_length=declared))
        assert (error.status, error.code) == (400, "INVALID_ARGUMENT")


async def test_p2_body_exactly_at_the_limit_accepted() -> None:
    base = {"email": "a@b.io", "password": ""}
    padding = LIMIT - len(json.dumps(base).encode())
    body = json.dumps({"email": "a@b.io", "password": "x" * padding}).encode()
    assert len(body) == LIMIT
    assert len((await _read(_request([body]))).password) == padding


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonp"]
)
async def test_p2_wrong_content_type_refused_with_415(content_type: str | None) -> None:
    error = await _refusal(_request(_json({"email": "a@b.io"}), content_type=content_type))
    assert (error.status, error.code) == (415, "UNSUPPORTED_MEDIA_TYPE")


def _nested(levels: int) -> dict[str, object]:
    value: dict[str, object] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"n": value}
    return value


async def test_p2_too_deep_nesting_refused_with_400() -> None:
    body = {"email": "a@b.io", "password": "x" * 10, "deep": _nested(17)}
    error = await _refusal(_request(_json(body)))
    assert (error.status, error.code) == (400, "INVALID_ARGUMENT")
    assert "nests deeper than 16 levels" in error.message


async def test_p2_deep_arrays_refused_with_400() -> None:
    raw = b'{"email": "a@b.io", "password": "xxxxxxxxxx", "deep": ' + b"[" * 40 + b"]" * 40 + b"}"
    error = await _refusal(_request([raw]))
    assert "nests deeper" in error.message


async def test_p2_nesting_at_the_limit_passes_the_depth_check() -> None:
    """Sixteen levels pass the depth check; the unknown field is then refused by the mapper."""
    body = {"email": "a@b.io", "password": "x" * 10, "deep": _nested(15)}
    error = await _refusal(_request(_json(body)))
    assert "invalid field" in error.message


async def test_p2_unknown_field_refused_with_400() -> None:
    body = {"email": "a@b.io", "password": "x" * 10, "is_admin": True}
    error = await _refusal(_request(_json(body)))
    assert (error.status, error.code) == (400, "INVALID_ARGUMENT")
    assert error.message.startswith("invalid field:")
    assert "is_admin" in error.message


async def test_p2_mistyped_field_refused_with_400() -> None:
    error = await _refusal(_request(_json({"email": ["a@b.io"], "password": "x" * 10})))
    assert (error.status, error.code) == (400, "INVALID_ARGUMENT")
    assert "email" in error.message


def test_p2_client_ip_is_the_peer_address() -> None:
    assert client_ip(_request([])) == "198.51.100.4"
    assert client_ip(_request([], client=None)) == ""


def test_s4_forwarded_headers_not_believed_for_client_ip() -> None:
    request = _request([], extra_headers=[(b"x-forwarded-for", b"1.2.3.4")])
    assert client_ip(request) == "198.51.100.4"


def test_p2_user_agent_capped_at_512_characters() -> None:
    request = _request([], extra_headers=[(b"user-agent", b"A" * 2000)])
    assert user_agent(request) == "A" * 512
    assert user_agent(_request([])) == ""
