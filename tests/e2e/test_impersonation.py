"""Impersonation end to end through the gateway (S6): the demo org's owner acts as a member and
comes back to their own session; refusals for a higher role, the platform root and more than 60
minutes; everything in the audit log with impersonator_id (L1)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import psycopg

from helios.devstack.stack import Stack

from .conftest import Browser, demo_owner, sign_up, wait_for

REASON = "support ticket 1234: the member cannot open their documents"
ADMIN_COOKIE = "helios_admin_session"
CACHE = "helios_session_cache"


def _user_type(owner: Browser, role_id: str) -> str:
    """A new user type of the org whose default role is `role_id`."""
    name = f"e2e-type-{uuid.uuid4().hex[:8]}"
    created = owner.post(
        "/api/v1/authz/user-types", json={"name": name, "default_role_id": role_id}
    )
    assert created.status_code == 200, created.text
    return name


def _blueprint(owner: Browser, blueprint: str) -> str:
    roles = owner.get("/api/v1/authz/roles", params={"page_size": 100}).json()["roles"]
    return str(next(r["role_id"] for r in roles if r["blueprint"] == blueprint))


def _add(owner: Browser, org_id: str, email: str, user_type: str) -> str:
    added = owner.post(
        f"/api/v1/identity/orgs/{org_id}/members", json={"email": email, "user_type": user_type}
    )
    assert added.status_code == 200, added.text
    return str(added.json()["member"]["user"]["user_id"])


def _start(browser: Browser, user_id: str, **fields: Any) -> httpx.Response:
    return browser.post(
        "/api/auth/impersonate", json={"user_id": user_id, "reason": REASON, **fields}
    )


def _audit_rows(db: psycopg.Connection, action: str, resource_id: str) -> list[dict[str, Any]]:
    with db.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        cursor.execute(
            "SELECT * FROM audit.audit_log WHERE action = %s AND resource_id = %s",
            (action, resource_id),
        )
        return list(cursor.fetchall())


def test_s6_owner_impersonates_member_audited_and_returns_to_own_session(
    stack: Stack, db: psycopg.Connection
) -> None:
    """S6, L1: the owner impersonates an Employee for 15 minutes: /api/auth/session shows the
    member with impersonator_id, no cache cookie is ever issued (re-resolved on every request),
    an action taken is audited with impersonator_id, a nested impersonation is refused; stopping
    ends the impersonation session and puts the owner's own session back."""
    owner, owner_id, org_id = demo_owner(stack)
    email = sign_up(stack, "impersonation-e2e")
    member_id = _add(
        owner, org_id, email, _user_type(owner, _blueprint(owner, "ROLE_BLUEPRINT_EMPLOYEE"))
    )
    member_session = Browser(stack).sign_in(email)["session"]["session_id"]
    own_token = owner.cookies["helios_session"][0]

    started = _start(owner, member_id, ttl_seconds=900)
    assert started.status_code == 200, started.text
    session = started.json()["session"]
    assert (session["user_id"], session["impersonator_id"]) == (member_id, owner_id)
    assert session["method"] == "impersonation"
    assert "session_token" not in started.text
    lifetime = dt.datetime.fromisoformat(session["expires_at"]) - dt.datetime.fromisoformat(
        session["created_at"]
    )
    assert lifetime == dt.timedelta(minutes=15)
    assert owner.cookies[ADMIN_COOKIE] == (own_token, "/api/auth/impersonate")
    assert owner.cookies["helios_session"][0] != own_token

    for _ in range(2):
        shown = owner.get("/api/auth/session")
        assert shown.status_code == 200, shown.text
        assert shown.json()["user"]["user_id"] == member_id
        assert shown.json()["session"]["impersonator_id"] == owner_id
        assert CACHE not in owner.cookies
    acted = owner.delete(f"/api/v1/identity/sessions/{member_session}")
    assert acted.status_code == 200, acted.text
    nested = _start(owner, owner_id)
    assert nested.status_code == 400
    assert nested.json()["error"]["code"] == "FAILED_PRECONDITION"

    stopped = owner.post("/api/auth/impersonate/stop")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["user"]["user_id"] == owner_id
    assert ADMIN_COOKIE not in owner.cookies
    assert owner.cookies["helios_session"][0] == own_token
    back = owner.get("/api/auth/session").json()
    assert back["user"]["user_id"] == owner_id
    assert not back["session"].get("impersonator_id")
    row = db.execute(
        "SELECT revoked_at FROM identity.sessions WHERE id = %s", (session["session_id"],)
    ).fetchone()
    assert row is not None
    assert row[0] is not None

    start_row = wait_for(
        lambda: _audit_rows(db, "identity.impersonation.start", member_id), what="the start"
    )[0]
    assert start_row["actor_id"] == owner_id
    assert start_row["diff"]["impersonator_id"] == owner_id
    assert start_row["diff"]["reason"] == REASON
    assert start_row["diff"]["ttl_seconds"] == 900
    for action, resource in (
        ("identity.session.revoke", member_session),
        ("identity.impersonation.stop", session["session_id"]),
    ):
        row = wait_for(lambda a=action, r=resource: _audit_rows(db, a, r), what=action)[0]
        assert (row["actor_id"], row["impersonator_id"]) == (member_id, owner_id), action
        assert row["session_id"] == session["session_id"], action


def test_s6_refused_for_a_higher_role_the_root_and_beyond_60_minutes(stack: Stack) -> None:
    """S6: a support agent holding only iam.user.impersonate cannot impersonate the owner (who
    holds rights the agent lacks); nobody impersonates the platform root, even as a member of
    the org; more than 3600 s or no reason is refused; 3600 s is allowed."""
    owner, owner_id, org_id = demo_owner(stack)
    created = owner.post(
        "/api/v1/authz/roles",
        json={
            "name": f"e2e-support-{uuid.uuid4().hex[:8]}",
            "permissions": [{"permission": "iam.user.impersonate", "scope": "SCOPE_ANY"}],
        },
    )
    assert created.status_code == 200, created.text
    agent_email = sign_up(stack, "impersonation-e2e")
    _add(owner, org_id, agent_email, _user_type(owner, created.json()["role"]["role_id"]))
    agent = Browser(stack)
    agent.sign_in(agent_email)
    higher = _start(agent, owner_id)
    assert higher.status_code == 403, higher.text
    assert "rights you lack" in higher.json()["error"]["message"]

    employee = _user_type(owner, _blueprint(owner, "ROLE_BLUEPRINT_EMPLOYEE"))
    member_id = _add(owner, org_id, sign_up(stack, "impersonation-e2e"), employee)
    assert _start(owner, member_id, ttl_seconds=3601).status_code == 400
    assert _start(owner, member_id, reason="").status_code == 400
    hour = _start(owner, member_id, ttl_seconds=3600)
    assert hour.status_code == 200, hour.text
    session = hour.json()["session"]
    assert dt.datetime.fromisoformat(session["expires_at"]) - dt.datetime.fromisoformat(
        session["created_at"]
    ) == dt.timedelta(hours=1)
    assert owner.post("/api/auth/impersonate/stop").status_code == 200

    root_id = _add(owner, org_id, stack.root_credentials["email"], employee)
    try:
        refused = _start(owner, root_id)
        assert refused.status_code == 403, refused.text
        assert "platform root" in refused.json()["error"]["message"]
    finally:
        removed = owner.delete(f"/api/v1/identity/orgs/{org_id}/members/{root_id}")
        assert removed.status_code == 200, removed.text
