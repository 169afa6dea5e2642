"""Push 2FA through the gateway with the reference device (A3): a user of the demo org registers
a device, a sign-in waits for it, the browser watches the push as NDJSON while the device
(answering through another gateway and identity replica) approves or denies it; time-outs,
forged signatures and other users' devices are refused; every step lands in the audit log."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import psycopg
import pytest

from helios.devstack.stack import Stack
from helios.proto.audit.v1 import events_pb2
from helios.proto.identity.v1 import identity_pb2
from helios.push_device import Device, GatewayDevice, GatewayError

PASSWORD = "correct horse battery"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
PUSH = "SECOND_FACTOR_METHOD_PUSH"
CHALLENGES = "/api/v1/identity/mfa/push-challenges"
SUCCESS = events_pb2.AUDIT_OUTCOME_SUCCESS
FAILURE = events_pb2.AUDIT_OUTCOME_FAILURE


@pytest.fixture(scope="module")
def replica_gateway(stack: Stack) -> str:
    """A second gateway calling a second identity replica (same database): devices answer
    there while browsers watch through the stack's own gateway."""
    port = stack.start_identity_replica("identity-push-replica")
    return stack.start_gateway(
        "gateway-push-replica", {"HELIOS_IDENTITY_TARGET": f"localhost:{port}"}
    )


@pytest.fixture
async def clients(stack: Stack) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """Makes HTTP clients for a gateway URL; all are closed when the test ends."""
    made: list[httpx.AsyncClient] = []

    def make(base_url: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=base_url, timeout=15, headers={"user-agent": UA})
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


def _wait_for(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
    return value


def _adopt_session(client: httpx.AsyncClient, signed_in: httpx.Response, origin: str) -> None:
    """Send the session and CSRF cookies explicitly (they are Secure; the local gateway speaks
    plain HTTP) with the double-submit header."""
    jar = {c.name: c.value or "" for c in signed_in.cookies.jar}
    client.cookies.clear()
    client.headers["cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items() if v)
    client.headers["x-csrf-token"] = jar["helios_csrf"]
    client.headers["origin"] = origin


async def _sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    reply = await client.post("/api/auth/sign-in", json={"email": email, "password": password})
    assert reply.status_code == 200, reply.text
    return reply


async def _employee_of_demo(
    stack: Stack, db: psycopg.Connection, make: Callable[[str], httpx.AsyncClient]
) -> tuple[str, str]:
    """A new user of the demo org holding its Employee role (so authz grants them
    `identity.mfa.enroll` on their own account): (e-mail, user id). The membership row is
    written straight into identity's table (member management is another area's)."""
    email = f"push-{uuid.uuid4().hex[:10]}@example.com"
    browser = make(stack.gateway_url)
    signed_up = await browser.post("/api/auth/sign-up", json={"email": email, "password": PASSWORD})
    assert signed_up.status_code == 201, signed_up.text
    user_id = str(signed_up.json()["user"]["user_id"])
    row = db.execute("SELECT id FROM identity.orgs WHERE slug = 'demo'").fetchone()
    assert row is not None
    org_id = str(row[0])
    db.execute(
        "INSERT INTO identity.memberships (org_id, user_id, user_type) VALUES (%s, %s, 'employee')",
        (org_id, user_id),
    )
    owner = make(stack.gateway_url)
    creds = stack.demo_credentials
    _adopt_session(
        owner, await _sign_in(owner, creds["email"], creds["password"]), stack.gateway_url
    )
    roles = await owner.get("/api/v1/authz/roles", params={"org_id": org_id})
    assert roles.status_code == 200, roles.text
    (employee,) = [r for r in roles.json()["roles"] if r["blueprint"] == "ROLE_BLUEPRINT_EMPLOYEE"]
    assigned = await owner.post(
        f"/api/v1/authz/roles/{employee['role_id']}/assignments",
        json={"org_id": org_id, "user_id": user_id},
    )
    assert assigned.status_code == 200, assigned.text
    return email, user_id


async def _registered_device(
    stack: Stack, email: str, make: Callable[[str], httpx.AsyncClient], device_gateway: str
) -> GatewayDevice:
    """A reference device registered by the signed-in user (before any second factor), which
    then talks to `device_gateway` without any session."""
    app = make(stack.gateway_url)
    _adopt_session(app, await _sign_in(app, email, PASSWORD), stack.gateway_url)
    device = Device.generate()
    registered = await GatewayDevice(device, app).register("Pixel 9")
    assert registered.name == "Pixel 9"
    return GatewayDevice(device, make(device_gateway))


async def _challenge_token(browser: httpx.AsyncClient, email: str) -> str:
    """Sign in with the password: no session yet, a challenge offering push instead."""
    reply = await _sign_in(browser, email, PASSWORD)
    assert "helios_session" not in reply.cookies
    second_factor = reply.json()["second_factor"]
    assert PUSH in second_factor["methods"]
    return str(second_factor["challenge_token"])


async def _create_push(browser: httpx.AsyncClient, token: str) -> dict[str, Any]:
    reply = await browser.post(CHALLENGES, json={"challenge_token": token})
    assert reply.status_code == 200, reply.text
    push: dict[str, Any] = reply.json()["push_challenge"]
    assert push["state"] == "PUSH_CHALLENGE_STATE_PENDING"
    return push


async def _watch(
    browser: httpx.AsyncClient, push_id: str, token: str, watching: asyncio.Event
) -> list[str]:
    """The states the NDJSON watch streams until it ends; sets `watching` after the first."""
    states: list[str] = []
    async with browser.stream(
        "POST", f"{CHALLENGES}/{push_id}:watch", json={"challenge_token": token}
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("application/x-ndjson")
        async for line in stream.aiter_lines():
            if line:
                states.append(json.loads(line)["push_challenge"]["state"])
                watching.set()
    return states


async def _complete(browser: httpx.AsyncClient, token: str) -> httpx.Response:
    return await browser.post(
        "/api/auth/second-factor",
        json={"challenge_token": token, "method": PUSH, "code": ""},
    )


def _audit(db: psycopg.Connection, resource_id: str) -> list[tuple[str, int, Any]]:
    rows = db.execute(
        "SELECT action, outcome, diff FROM audit.audit_log WHERE resource_id = %s ORDER BY seq",
        (resource_id,),
    ).fetchall()
    return [(str(action), int(outcome), diff) for action, outcome, diff in rows]


async def test_a3_push_approved_on_a_device_of_another_replica_signs_in_once(
    stack: Stack,
    db: psycopg.Connection,
    clients: Callable[[str], httpx.AsyncClient],
    replica_gateway: str,
) -> None:
    """A3: sign-in of a push-enrolled user -> CreatePushChallenge -> the reference device
    (through a second gateway and identity replica) lists and approves it -> the browser's
    watch streams PENDING then APPROVED and ends -> the second-factor route opens the session,
    once; the steps are in the audit log."""
    email, user_id = await _employee_of_demo(stack, db, clients)
    phone = await _registered_device(stack, email, clients, replica_gateway)
    browser = clients(stack.gateway_url)
    token = await _challenge_token(browser, email)
    push = await _create_push(browser, token)
    assert push["user_agent"] == UA

    watching = asyncio.Event()
    watch = asyncio.create_task(_watch(browser, push["push_challenge_id"], token, watching))
    await asyncio.wait_for(watching.wait(), 10)
    (pending,) = await phone.pending()
    assert pending.push_challenge_id == push["push_challenge_id"]
    assert pending.user_agent == UA
    approved = await phone.approve(pending)
    assert approved.state == identity_pb2.PUSH_CHALLENGE_STATE_APPROVED
    assert await asyncio.wait_for(watch, 10) == [
        "PUSH_CHALLENGE_STATE_PENDING",
        "PUSH_CHALLENGE_STATE_APPROVED",
    ]

    completed = await _complete(browser, token)
    assert completed.status_code == 200, completed.text
    assert (completed.cookies.get("helios_session") or "").startswith("hls_")
    session = await clients(stack.gateway_url).get(
        "/api/auth/session",
        headers={"cookie": f"helios_session={completed.cookies['helios_session']}"},
    )
    assert session.status_code == 200
    assert session.json()["user"]["user_id"] == user_id
    assert session.json()["session"]["method"] == "push"
    again = await _complete(browser, token)
    assert again.status_code == 401

    audited = _wait_for(
        lambda: len(rows := _audit(db, push["push_challenge_id"])) >= 2 and rows,
        "the push audit rows",
    )
    assert [(action, outcome) for action, outcome, _ in audited] == [
        ("identity.pushChallenge.create", SUCCESS),
        ("identity.pushChallenge.approve", SUCCESS),
    ]
    assert audited[1][2]["device_id"] == phone.device.device_id


async def test_a3_push_denied_on_the_device_gives_no_session(
    stack: Stack,
    db: psycopg.Connection,
    clients: Callable[[str], httpx.AsyncClient],
    replica_gateway: str,
) -> None:
    """A3: the device denies: the watch ends DENIED and the sign-in cannot be completed."""
    email, _ = await _employee_of_demo(stack, db, clients)
    phone = await _registered_device(stack, email, clients, replica_gateway)
    browser = clients(stack.gateway_url)
    token = await _challenge_token(browser, email)
    push = await _create_push(browser, token)
    (pending,) = await phone.pending()
    denied = await phone.deny(pending)
    assert denied.state == identity_pb2.PUSH_CHALLENGE_STATE_DENIED
    states = await _watch(browser, push["push_challenge_id"], token, asyncio.Event())
    assert states == ["PUSH_CHALLENGE_STATE_DENIED"]
    refused = await _complete(browser, token)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "FAILED_PRECONDITION"
    assert "helios_session" not in refused.cookies


async def test_a3_push_timed_out_ends_the_watch_expired(
    stack: Stack,
    db: psycopg.Connection,
    clients: Callable[[str], httpx.AsyncClient],
    replica_gateway: str,
) -> None:
    """A3: a push past its expiry (moved into the past in the database, no waiting) ends the
    open watch with EXPIRED; the device's late approval is refused and audited."""
    email, _ = await _employee_of_demo(stack, db, clients)
    phone = await _registered_device(stack, email, clients, replica_gateway)
    browser = clients(stack.gateway_url)
    token = await _challenge_token(browser, email)
    push = await _create_push(browser, token)
    (pending,) = await phone.pending()

    watching = asyncio.Event()
    watch = asyncio.create_task(_watch(browser, push["push_challenge_id"], token, watching))
    await asyncio.wait_for(watching.wait(), 10)
    db.execute(
        "UPDATE identity.push_challenges SET expires_at = now() - interval '1 second' "
        "WHERE id = %s",
        (push["push_challenge_id"],),
    )
    assert await asyncio.wait_for(watch, 10) == [
        "PUSH_CHALLENGE_STATE_PENDING",
        "PUSH_CHALLENGE_STATE_EXPIRED",
    ]
    with pytest.raises(GatewayError) as late:
        await phone.approve(pending)
    assert (late.value.status, late.value.code) == (400, "FAILED_PRECONDITION")
    assert (await _complete(browser, token)).status_code == 400

    audited = _wait_for(
        lambda: len(rows := _audit(db, push["push_challenge_id"])) >= 3 and rows,
        "the push audit rows",
    )
    assert [(action, outcome) for action, outcome, _ in audited] == [
        ("identity.pushChallenge.create", SUCCESS),
        ("identity.pushChallenge.expire", SUCCESS),
        ("identity.pushChallenge.respond", FAILURE),
    ]


async def test_a3_forged_signature_and_another_users_device_refused(
    stack: Stack,
    db: psycopg.Connection,
    clients: Callable[[str], httpx.AsyncClient],
    replica_gateway: str,
) -> None:
    """A3: an answer signed by a key that is not the named device's is 403, so is an answer by
    a device of another user; both are audited as failures and the push stays pending."""
    email, _ = await _employee_of_demo(stack, db, clients)
    other_email, _ = await _employee_of_demo(stack, db, clients)
    phone = await _registered_device(stack, email, clients, replica_gateway)
    stranger = await _registered_device(stack, other_email, clients, replica_gateway)
    browser = clients(stack.gateway_url)
    token = await _challenge_token(browser, email)
    push = await _create_push(browser, token)
    (pending,) = await phone.pending()
    assert await stranger.pending() == []

    forger = Device.generate()
    forger.device_id = phone.device.device_id
    for impostor in (GatewayDevice(forger, clients(replica_gateway)), stranger):
        with pytest.raises(GatewayError) as refused:
            await impostor.approve(pending)
        assert (refused.value.status, refused.value.code) == (403, "PERMISSION_DENIED")
    (still,) = await phone.pending()
    assert still.state == identity_pb2.PUSH_CHALLENGE_STATE_PENDING

    audited = _wait_for(
        lambda: len(rows := _audit(db, push["push_challenge_id"])) >= 3 and rows,
        "the push audit rows",
    )
    failures = [diff["reason"] for action, outcome, diff in audited if outcome == FAILURE]
    assert failures == ["bad_signature", "foreign_device"]
