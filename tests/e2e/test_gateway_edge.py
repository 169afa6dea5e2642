"""The gateway edge end to end: transcoded routes from the protos, OpenAPI, session cache cookie,
CSRF, JSON errors (P2, S1, S2, S3, G1)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from helios.devstack.stack import Stack
from helios.gateway.transcoding.catalog import load_bindings

PASSWORD = "correct horse battery"


_OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def _client(stack: Stack) -> httpx.Client:
    client = httpx.Client(base_url=stack.gateway_url, timeout=15)
    _OPEN.append(client)
    return client


def _signed_in(stack: Stack) -> tuple[httpx.Client, str]:
    """A client holding a session, and the user id. Cookies are sent explicitly: they are Secure
    and the local gateway speaks plain HTTP."""
    client = _client(stack)
    email = f"edge-{uuid.uuid4().hex[:10]}@example.com"
    user = client.post("/api/auth/sign-up", json={"email": email, "password": PASSWORD})
    assert user.status_code == 201
    signed_in = client.post("/api/auth/sign-in", json={"email": email, "password": PASSWORD})
    assert signed_in.status_code == 200
    jar = {c.name: c.value for c in signed_in.cookies.jar}
    client.cookies.clear()
    client.headers["cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items() if v)
    client.headers["x-csrf-token"] = jar["helios_csrf"]
    client.headers["origin"] = stack.gateway_url
    return client, user.json()["user"]["user_id"]


def _cookies(client: httpx.Client) -> dict[str, str]:
    return dict(part.split("=", 1) for part in client.headers["cookie"].split("; "))


def _set_cookies(client: httpx.Client, cookies: dict[str, str]) -> None:
    client.headers["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def test_p2_openapi_lists_every_annotated_rpc(stack: Stack) -> None:
    """P2: /openapi.json is OpenAPI 3.1 and has one operation per annotated RPC binding."""
    document = _client(stack).get("/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    operations = {
        (verb.upper(), path)
        for path, item in document["paths"].items()
        for verb in item
        if path.startswith("/api/v1/")
    }
    expected = {(b.verb, b.template.openapi_path) for b in load_bindings()}
    assert operations == expected
    assert len(expected) > 50
    docs = _client(stack).get("/docs")
    assert docs.status_code == 200
    assert "<script" not in docs.text


def test_p2_every_route_reachable_with_valid_and_refused_with_invalid_request(
    stack: Stack,
) -> None:
    """P2: every route of the document answers a well-formed request from its service (never the
    gateway's 404/405), and refuses a malformed one at the edge with a JSON 400."""
    client, _ = _signed_in(stack)
    document = client.get("/openapi.json").json()
    for path, item in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for verb, operation in item.items():
            url = _fill(path)
            body: dict[str, Any] | None = {} if "requestBody" in operation else None
            valid = client.request(verb.upper(), url, json=body)
            assert valid.headers["content-type"].startswith(
                ("application/json", "application/x-ndjson")
            ), (verb, path)
            if valid.status_code >= 400:
                error = valid.json()["error"]
                assert not error["message"].startswith("no route"), (verb, path, error)
                assert valid.status_code != 405, (verb, path)
            invalid = client.request(verb.upper(), url, params={"no_such_field": "1"}, json=body)
            if operation.get("requestBody"):
                invalid = client.request(verb.upper(), url, json=["not", "an", "object"])
            assert invalid.status_code == 400, (verb, path, invalid.text)
            assert invalid.json()["error"]["code"] == "INVALID_ARGUMENT"


def test_p2_implemented_rpc_answers_through_transcoding(stack: Stack) -> None:
    """P2: GET /api/v1/identity/me reaches identity.GetCurrentUser and returns the user."""
    client, user_id = _signed_in(stack)
    me = client.get("/api/v1/identity/me")
    assert me.status_code == 200
    assert me.json()["user"]["user_id"] == user_id
    anonymous = _client(stack).get("/api/v1/identity/me")
    assert anonymous.status_code == 401
    not_an_admin = client.get("/api/v1/authz/roles")
    assert not_an_admin.status_code == 403
    assert not_an_admin.json()["error"]["code"] == "PERMISSION_DENIED"


def test_p2_unknown_route_and_wrong_method_answer_json(stack: Stack) -> None:
    """P2: 404 and 405 come with a JSON error body."""
    client = _client(stack)
    for url, method, status in [
        ("/api/v1/nothing/here", "GET", 404),
        ("/nothing", "GET", 404),
        ("/api/v1/identity/me", "POST", 405),
    ]:
        response = client.request(method, url)
        assert response.status_code == status
        assert response.json()["error"]["status"] == status


def test_s2_cache_cookie_serves_for_60s_and_is_bound_to_its_session(
    stack: Stack, db: psycopg.Connection
) -> None:
    """S2/S3: the first authenticated request sets a 60 s cache cookie; with it the session store
    is skipped (a just-revoked session still passes the hot path), without it or with a cookie
    tampered or bound to another session, the revocation is seen at once."""
    client, user_id = _signed_in(stack)
    first = client.get("/api/v1/audit/events")
    assert first.status_code == 200
    cache = first.cookies.get("helios_session_cache")
    assert cache
    assert "max-age=60" in first.headers["set-cookie"].lower()
    cookies = _cookies(client)
    db.execute("UPDATE identity.sessions SET revoked_at = now() WHERE user_id = %s", (user_id,))

    _set_cookies(client, {**cookies, "helios_session_cache": cache})
    assert client.get("/api/v1/audit/events").status_code == 200

    _set_cookies(client, {**cookies, "helios_session_cache": cache[:-2] + "AA"})
    assert client.get("/api/v1/audit/events").status_code == 401

    other, _ = _signed_in(stack)
    _set_cookies(other, {**_cookies(other), "helios_session_cache": cache})
    assert other.get("/api/v1/identity/me").json()["user"]["user_id"] != user_id

    _set_cookies(client, cookies)
    assert client.get("/api/v1/audit/events").status_code == 401


def test_s1_csrf_cross_origin_cookie_post_refused_same_origin_with_token_passes(
    stack: Stack,
) -> None:
    """S1: a cookie-authenticated POST needs our Origin and the double-submit token."""
    client, _ = _signed_in(stack)
    refused = [
        {"origin": "https://evil.example"},
        {"x-csrf-token": "wrong"},
        {"x-csrf-token": ""},
    ]
    for headers in refused:
        response = client.post("/api/auth/sign-out", headers=headers)
        assert response.status_code == 403, headers
        assert response.json()["error"]["code"] == "PERMISSION_DENIED"
    assert client.get("/api/auth/session").status_code == 200  # still signed in
    signed_out = client.post("/api/auth/sign-out")
    assert signed_out.status_code == 204
    assert client.get("/api/auth/session").status_code == 401


def test_s1_foreign_origin_sign_in_refused(stack: Stack) -> None:
    """S1: login CSRF: a sign-in posted from another site is refused."""
    response = _client(stack).post(
        "/api/auth/sign-in",
        json={"email": "a@example.com", "password": PASSWORD},
        headers={"origin": "https://evil.example"},
    )
    assert response.status_code == 403


@pytest.mark.parametrize("authorization", ["Bearer hlk_abcdefghijklmnopqrstuvwxyz", "Basic eDp5"])
def test_p2_unknown_bearer_and_other_schemes_refused(stack: Stack, authorization: str) -> None:
    """P2: a bearer token that is neither an API key nor an AI token, and any other
    Authorization scheme, are refused with 401."""
    response = _client(stack).get("/api/v1/identity/me", headers={"authorization": authorization})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


def test_g1_security_txt_has_the_rfc9116_fields_and_a_future_expiry(stack: Stack) -> None:
    """G1: /.well-known/security.txt answers text/plain with Contact, Expires (in the future),
    Canonical and Preferred-Languages."""
    response = _client(stack).get("/.well-known/security.txt")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    fields = dict(line.split(": ", 1) for line in response.text.strip().splitlines())
    assert fields["Contact"].startswith(("mailto:", "https://"))
    expires = dt.datetime.fromisoformat(fields["Expires"].replace("Z", "+00:00"))
    assert expires > dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    assert fields["Canonical"].endswith("/.well-known/security.txt")
    assert fields["Preferred-Languages"] == "en"


def test_p2_metrics_count_requests_by_route_template(stack: Stack) -> None:
    """P2: /metrics exposes request counts labelled by route template (bounded labels)."""
    client = _client(stack)
    assert client.get("/api/v1/identity/me").status_code == 401
    assert client.get(f"/api/v1/authz/roles/{uuid.uuid4()}").status_code == 401
    metrics = client.get("/metrics").text
    assert 'route="/api/v1/identity/me",status="401"' in metrics
    assert 'route="/api/v1/authz/roles/{role_id}"' in metrics
    assert "helios_gateway_request_duration_seconds_bucket" in metrics


def test_p2_transcoded_route_refuses_oversized_and_deep_bodies_with_json(stack: Stack) -> None:
    """P2: the limits hold on transcoded routes too: 413 for a body over the cap, 400 for JSON
    nested too deep, each with a JSON error body."""
    client = _client(stack)
    url = "/api/v1/identity/email:verify"
    big = client.post(url, json={"token": "x" * 70_000})
    assert big.status_code == 413
    assert big.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    deep: Any = "leaf"
    for _ in range(40):
        deep = {"a": deep}
    nested = client.post(url, json={"token": "t", "nested": deep})
    assert nested.status_code == 400
    assert "deeper" in nested.json()["error"]["message"]


def test_p2_server_streaming_route_failing_at_once_gets_an_http_status(stack: Stack) -> None:
    """P2: a server-streaming RPC (served as NDJSON) that fails before its first message answers
    with the mapped HTTP status and a JSON error, not a 200 stream."""
    client, _ = _signed_in(stack)  # a user of no org: another org's log is out of reach
    response = client.post(f"/api/v1/audit/orgs/{uuid.uuid4()}/exports", json={})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == "PERMISSION_DENIED"


def test_p2_service_errors_carry_google_rpc_details_as_json(stack: Stack) -> None:
    """P2: a service refusal naming a field reaches the client as a google.rpc.BadRequest detail
    in the JSON error body."""
    response = _client(stack).post(
        "/api/auth/sign-up", json={"email": "no-at-sign", "password": PASSWORD}
    )
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert details[0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert details[0]["fieldViolations"][0]["field"] == "email"
