"""AI sessions end to end through the gateway (I1): the demo org's owner delegates to an AI; the
AI token works on the agent routes only, never as a user session; it stops at once when revoked
or expired; API keys and narrowings beyond the user's rights cannot mint one; audited (L1)."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import psycopg

from helios.devstack.stack import Stack

from .conftest import Browser, demo_member, demo_owner, wait_for

SESSIONS = "/api/v1/ai/sessions"


def _bearer(stack: Stack, token: str) -> httpx.Client:
    """A client without cookies that sends `Authorization: Bearer token` (closed after the
    test)."""
    client = Browser(stack).http
    client.headers["authorization"] = f"Bearer {token}"
    return client


def _audited(db: psycopg.Connection, actor_id: str, action: str, resource_id: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM audit.audit_log WHERE actor_id = %s AND action = %s AND resource_id = %s",
        (actor_id, action, resource_id),
    ).fetchone()
    return row is not None


def test_i1_ai_token_works_on_agent_routes_only_until_revoked_or_expired(
    stack: Stack, db: psycopg.Connection
) -> None:
    """I1, L1: the owner creates an AI session (token shown once, `hai_`, only its sha256
    stored). With `Authorization: Bearer` it lists the actions (200) and reads an unknown
    invocation (404), and is refused (403) on a user-only route, on the AI session routes and on
    the cookie routes; as a session cookie it is nobody (401). Revoked, it is 401 on the next
    request; another one is 401 once expired. Creation and revocation are audited."""
    owner, owner_id, _ = demo_owner(stack)
    created = owner.post(SESSIONS, json={"purpose": "e2e triage", "ttl": "3600s"})
    assert created.status_code == 200, created.text
    token, session = created.json()["token"], created.json()["session"]
    session_id = session["ai_session_id"]
    assert token.startswith("hai_")
    assert (session["state"], session["user_id"]) == ("AI_SESSION_STATE_ACTIVE", owner_id)
    row = db.execute("SELECT * FROM ai_broker.ai_sessions WHERE id = %s", (session_id,)).fetchone()
    assert row is not None
    assert hashlib.sha256(token.encode()).digest() in row
    assert not any(token[4:] in str(value) for value in row)
    listed = owner.get(SESSIONS).json()["sessions"]
    assert [s["ai_session_id"] for s in listed if s["ai_session_id"] == session_id] == [session_id]
    assert token not in owner.get(SESSIONS).text

    agent = _bearer(stack, token)
    actions = agent.get("/api/v1/ai/actions")
    assert actions.status_code == 200, actions.text
    unknown = agent.get(f"/api/v1/ai/invocations/{uuid.uuid4()}")
    assert unknown.status_code == 404, unknown.text
    refused = [
        agent.get("/api/v1/identity/me"),
        agent.get(SESSIONS),
        agent.post(SESSIONS, json={"purpose": "more rights"}),
        agent.post(f"{SESSIONS}/{session_id}:revoke", json={}),
        agent.get("/api/auth/session"),
        agent.post("/api/auth/sign-out"),
    ]
    assert [r.status_code for r in refused] == [403] * 6
    as_cookie = Browser(stack).http.get(
        "/api/v1/identity/me", headers={"cookie": f"helios_session={token}"}
    )
    assert as_cookie.status_code == 401

    revoked = owner.post(f"{SESSIONS}/{session_id}:revoke", json={})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["session"]["state"] == "AI_SESSION_STATE_REVOKED"
    after = agent.get("/api/v1/ai/actions")
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "UNAUTHENTICATED"

    expiring = owner.post(SESSIONS, json={"purpose": "e2e expiry"}).json()
    expiring_agent = _bearer(stack, expiring["token"])
    assert expiring_agent.get("/api/v1/ai/actions").status_code == 200
    db.execute(
        "UPDATE ai_broker.ai_sessions SET expires_at = now() - interval '1 second' WHERE id = %s",
        (expiring["session"]["ai_session_id"],),
    )
    assert expiring_agent.get("/api/v1/ai/actions").status_code == 401
    for action in ("ai.session.create", "ai.session.revoke"):
        wait_for(lambda a=action: _audited(db, owner_id, a, session_id), what=action)


def test_i1_no_ai_session_beyond_24h_the_users_rights_or_from_an_api_key(stack: Stack) -> None:
    """I1, I2: a ttl over 24 h is 400; an Employee narrowing to a permission they lack, or to a
    wider scope than they hold, is 403 (their own scope is fine); an API key carrying
    `ai.session.create` still cannot create one (403)."""
    owner, _, org_id = demo_owner(stack)
    too_long = owner.post(SESSIONS, json={"purpose": "long", "ttl": f"{24 * 3600 + 1}s"})
    assert too_long.status_code == 400, too_long.text
    assert too_long.json()["error"]["code"] == "INVALID_ARGUMENT"

    _, email = demo_member(stack, owner, org_id)
    employee = Browser(stack)
    employee.sign_in(email)
    for narrowing in (["ai.session.revoke:any"], ["ai.session.list:any"], ["iam.member.remove"]):
        beyond = employee.post(SESSIONS, json={"purpose": "narrow", "permissions": narrowing})
        assert beyond.status_code == 403, (narrowing, beyond.text)
    within = employee.post(
        SESSIONS, json={"purpose": "narrow", "permissions": ["ai.session.list:own"]}
    )
    assert within.status_code == 200, within.text
    assert within.json()["session"]["permissions"] == ["ai.session.list:own"]

    key = owner.post(
        "/api/v1/identity/api-keys",
        json={"org_id": org_id, "name": "ai", "permissions": ["ai.session.create"], "ttl_days": 1},
    )
    assert key.status_code == 200, key.text
    by_key = _bearer(stack, key.json()["api_key"]).post(SESSIONS, json={"purpose": "machine"})
    assert by_key.status_code == 403, by_key.text
    assert "API key" in by_key.json()["error"]["message"]
