"""End-to-end journeys of the walking skeleton through the gateway (P1, P2, P3, S1, L1, L3, E1)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import httpx
import nats
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from helios.devstack.stack import GRPC_SERVICES, Stack
from helios.kernel.bus import AUDIT_STREAM
from helios.kernel.clients import secure_channel
from helios.kernel.tls import ensure_dev_pki

UA = "helios-e2e/1.0"
PASSWORD = "correct horse battery"


def _email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def _post(stack: Stack, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"user-agent": UA, **kwargs.pop("headers", {})}
    return httpx.post(f"{stack.gateway_url}{path}", headers=headers, timeout=15, **kwargs)


def _sign_up(stack: Stack, email: str) -> httpx.Response:
    return _post(stack, "/api/auth/sign-up", json={"email": email, "password": PASSWORD})


def _sign_in(stack: Stack, email: str, password: str = PASSWORD) -> httpx.Response:
    return _post(stack, "/api/auth/sign-in", json={"email": email, "password": password})


def _wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def _audit_rows(db: psycopg.Connection, actor_id: str) -> list[dict[str, Any]]:
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT * FROM audit.audit_log WHERE actor_id = %s ORDER BY seq", (actor_id,))
        return list(cur.fetchall())


def _count(db: psycopg.Connection, table: str) -> int:
    row = db.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - test constant
    assert row is not None
    return int(row[0])


async def _health(stack: Stack, name: str, credentials: grpc.ChannelCredentials | None) -> int:
    target = f"localhost:{stack.ports[name]}"
    channel = (
        secure_channel(target, stack.certs("devstack"))
        if credentials is None
        else grpc.aio.secure_channel(target, credentials)
    )
    async with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)  # type: ignore[attr-defined]
        return int(reply.status)


def test_p1_all_six_processes_serving(stack: Stack) -> None:
    """P1: the five gRPC services answer health SERVING over mTLS; the gateway answers /readyz."""
    for name, _, _ in GRPC_SERVICES:
        status = asyncio.run(_health(stack, name, None))
        assert status == health_pb2.HealthCheckResponse.SERVING, name
    ready = httpx.get(f"{stack.gateway_url}/readyz", timeout=5)
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert set(ready.json()["backends"].values()) == {"serving"}


def test_e1_client_without_valid_certificate_refused_by_every_service(stack: Stack) -> None:
    """E1: no client certificate, or one from another CA, and the TLS handshake fails."""
    ca = stack.certs("devstack").ca.read_bytes()
    no_cert = grpc.ssl_channel_credentials(root_certificates=ca)
    stranger = ensure_dev_pki(stack.state / "stranger-pki", ["gateway"])["gateway"]
    foreign_cert = grpc.ssl_channel_credentials(
        root_certificates=ca,
        private_key=stranger.key.read_bytes(),
        certificate_chain=stranger.cert.read_bytes(),
    )
    for name, _, _ in GRPC_SERVICES:
        for credentials in (no_cert, foreign_cert):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                asyncio.run(_health(stack, name, credentials))
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, name


def test_s1_sign_up_then_sign_in_sets_hardened_cookie(stack: Stack) -> None:
    """S1/A1: sign-up 201; sign-in sets an HttpOnly, SameSite=lax, Secure cookie; session works."""
    email = _email()
    signed_up = _sign_up(stack, email)
    assert signed_up.status_code == 201, signed_up.text
    assert signed_up.json()["user"]["email"] == email
    assert "password" not in signed_up.text

    signed_in = _sign_in(stack, email)
    assert signed_in.status_code == 200, signed_in.text
    cookie = signed_in.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith("helios_session=hls_")
    assert {"httponly", "secure", "samesite", "path", "max-age"} <= attributes
    assert "samesite=lax" in cookie.lower()
    assert "session_token" not in signed_in.text
    assert signed_in.headers["cache-control"] == "no-store"
    assert signed_in.headers["strict-transport-security"].startswith("max-age=")

    token = cookie.split(";")[0].split("=", 1)[1]
    session = httpx.get(
        f"{stack.gateway_url}/api/auth/session", cookies={"helios_session": token}, timeout=10
    )
    assert session.status_code == 200
    assert session.json()["user"]["email"] == email
    assert session.json()["session"]["user_agent"] == UA

    anonymous = httpx.get(f"{stack.gateway_url}/api/auth/session", timeout=10)
    assert anonymous.status_code == 401
    forged = httpx.get(
        f"{stack.gateway_url}/api/auth/session",
        cookies={"helios_session": "hls_" + "A" * 43},
        timeout=10,
    )
    assert forged.status_code == 401


def test_a1_wrong_password_and_unknown_email_get_the_same_answer(stack: Stack) -> None:
    """A1: no account enumeration at the edge: same status and body."""
    email = _email()
    assert _sign_up(stack, email).status_code == 201
    wrong_password = _sign_in(stack, email, "not the right password")
    unknown_email = _sign_in(stack, _email())
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()
    assert "set-cookie" not in wrong_password.headers


def test_p1_demo_admin_seeded_and_can_sign_in(stack: Stack) -> None:
    """P1: the stack seeds a demo org whose admin signs in with the printed one-time password."""
    creds = stack.demo_credentials
    assert creds["org"] == "demo"
    assert _sign_in(stack, creds["email"], creds["password"]).status_code == 200


def _stream_msg_id(stack: Stack, seq: int) -> str:
    async def fetch() -> str:
        client = await nats.connect(stack.nats_url)
        try:
            message = await client.jetstream().get_msg(AUDIT_STREAM, seq)
            return str((message.headers or {}).get("Nats-Msg-Id", ""))
        finally:
            await client.close()

    return asyncio.run(fetch())


def test_l1_sign_up_and_sign_in_audited_through_jetstream(
    stack: Stack, db: psycopg.Connection
) -> None:
    """L1/P3: both actions land in audit_log with the L1 fields, and each row's stream sequence
    holds a JetStream message whose Nats-Msg-Id is the row's event id."""
    email = _email()
    user_id = _sign_up(stack, email).json()["user"]["user_id"]
    assert _sign_in(stack, email).status_code == 200

    rows = _wait_for(
        lambda: (r := _audit_rows(db, user_id)) and len(r) >= 2 and r,
        what="two audit rows",
    )
    by_action = {row["action"]: row for row in rows}
    assert set(by_action) == {"identity.user.signUp", "identity.user.signIn"}
    for row in by_action.values():
        assert row["actor_type"] == "user"
        assert row["actor_id"] == user_id
        assert row["ip"] == "127.0.0.1"
        assert row["user_agent"] == UA
        assert len(row["input_hash"]) == 64
        assert row["producer"] == "identity"
        assert row["stream_seq"] > 0
        assert _stream_msg_id(stack, row["stream_seq"]) == str(row["event_id"])
    assert by_action["identity.user.signIn"]["session_id"] == ""  # not yet signed in
    assert by_action["identity.user.signIn"]["resource_type"] == "identity.session"


def test_p2_bad_input_refused_and_nothing_written(stack: Stack, db: psycopg.Connection) -> None:
    """P2/A1: malformed JSON, missing fields, an oversized body, a wrong content type and an
    invalid e-mail get a 4xx with a clear message, and no row or event is written."""
    before = (_count(db, "identity.users"), _count(db, "identity.outbox"))
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "JSON"),
        ({"json": {"email": _email()}}, 400, "password"),
        ({"json": {"password": PASSWORD}}, 400, "email"),
        ({"json": {"email": "not-an-email", "password": PASSWORD}}, 400, "email"),
        ({"json": {"email": _email(), "password": "short"}}, 400, "password"),
        ({"json": {"email": _email(), "password": PASSWORD, "admin": True}}, 400, "admin"),
        ({"json": ["a", "list"]}, 400, "object"),
        (
            {"json": {"email": _email(), "password": PASSWORD, "display_name": "x" * 70_000}},
            413,
            "exceeds",
        ),
        ({"content": b"email=a", "headers": {"content-type": "text/plain"}}, 415, "json"),
    ]
    for kwargs, status, words in cases:
        response = _post(stack, "/api/auth/sign-up", **kwargs)
        assert response.status_code == status, (kwargs, response.text)
        error = response.json()["error"]
        assert words.lower() in error["message"].lower(), error
        assert error["status"] == status
    assert (_count(db, "identity.users"), _count(db, "identity.outbox")) == before


def test_l3_sign_up_survives_nats_outage_and_relay_restart_makes_no_duplicate(
    stack: Stack, db: psycopg.Connection
) -> None:
    """L3: with NATS stopped, sign-up still succeeds and its event waits in the outbox; it reaches
    audit_log once NATS is back. Restarting identity and replaying the outbox row (as after a
    crash between publish and mark) produces no duplicate row."""
    assert stack.nats is not None
    stack.nats.stop()
    try:
        email = _email()
        response = _sign_up(stack, email)
        assert response.status_code == 201, response.text
        user_id = response.json()["user"]["user_id"]
        pending = db.execute(
            "SELECT count(*) FROM identity.outbox WHERE published_at IS NULL"
        ).fetchone()
        assert pending is not None
        assert pending[0] >= 1
        time.sleep(1.0)
        assert _audit_rows(db, user_id) == []
    finally:
        stack.nats.start()
    rows = _wait_for(lambda: _audit_rows(db, user_id), timeout=40, what="the delayed audit row")
    assert [row["action"] for row in rows] == ["identity.user.signUp"]

    stack.restart("identity")
    event_id = str(rows[0]["event_id"])
    db.execute("UPDATE identity.outbox SET published_at = NULL WHERE id = %s", (event_id,))
    _wait_for(
        lambda: db.execute(
            "SELECT published_at IS NOT NULL FROM identity.outbox WHERE id = %s", (event_id,)
        ).fetchone()[0],  # type: ignore[index]
        what="the replayed outbox row to be published again",
    )
    assert _sign_in(stack, email).status_code == 200  # a later event overtakes any straggler
    _wait_for(lambda: len(_audit_rows(db, user_id)) >= 2, what="the sign-in row")
    actions = [row["action"] for row in _audit_rows(db, user_id)]
    assert actions == ["identity.user.signUp", "identity.user.signIn"]
