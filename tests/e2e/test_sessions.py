"""Sessions end to end through the gateway: listing one's own and, as the demo org's owner, a
member's (S5); revoking one session or every session of a member, the cache cookie refused at
once, every revocation audited (S3, L1)."""

from __future__ import annotations

from typing import Any

import psycopg

from helios.devstack.stack import Stack

from .conftest import Browser, demo_member, demo_owner, sign_up, wait_for

SESSIONS = "/api/v1/identity/sessions"
CACHE = "helios_session_cache"


def _warm(browser: Browser) -> None:
    """One request that resolves the session and leaves a cache cookie in the browser."""
    answered = browser.get(SESSIONS)
    assert answered.status_code == 200, answered.text
    assert CACHE in browser.cookies


def _audit_row(db: psycopg.Connection, action: str, resource_id: str) -> dict[str, Any] | None:
    with db.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        cursor.execute(
            "SELECT * FROM audit.audit_log WHERE action = %s AND resource_id = %s",
            (action, resource_id),
        )
        row: dict[str, Any] | None = cursor.fetchone()
        return row


def test_s3_single_session_revoke_refuses_its_cache_cookie_at_once(
    stack: Stack, db: psycopg.Connection
) -> None:
    """S3: from the laptop a user revokes the phone's session; the phone's very next request,
    cache cookie and all, is refused and its cache cookie cleared; the laptop works on; the
    revoke is audited with who revoked it."""
    email = sign_up(stack, "sessions-e2e")
    laptop, phone = Browser(stack), Browser(stack)
    user_id = laptop.sign_in(email)["user"]["user_id"]
    phone_session = phone.sign_in(email)["session"]["session_id"]
    _warm(phone)

    revoked = laptop.delete(f"{SESSIONS}/{phone_session}")
    assert revoked.status_code == 200, revoked.text

    refused = phone.get(SESSIONS)
    assert refused.status_code == 401
    assert CACHE not in phone.cookies
    assert laptop.get(SESSIONS).status_code == 200
    row = wait_for(
        lambda: _audit_row(db, "identity.session.revoke", phone_session), what="the revoke"
    )
    assert row["actor_id"] == user_id
    assert row["diff"] == {"user_id": user_id, "revoked_by": user_id, "own": True}


def test_s5_sessions_listed_by_their_user_and_by_an_admin_only(stack: Stack) -> None:
    """S5: a member lists their sessions (the current one marked); the org's owner lists the
    member's; the member asking for the owner's is refused 403."""
    owner, owner_id, org_id = demo_owner(stack)
    member_id, email = demo_member(stack, owner, org_id)
    member = Browser(stack)
    session_id = member.sign_in(email)["session"]["session_id"]

    own = member.get(SESSIONS)
    assert own.status_code == 200, own.text
    listed = {s["session_id"]: s for s in own.json()["sessions"]}
    assert listed[session_id]["current"] is True
    assert listed[session_id]["org_id"] == org_id

    by_admin = owner.get(SESSIONS, params={"user_id": member_id})
    assert by_admin.status_code == 200, by_admin.text
    sessions = by_admin.json()["sessions"]
    assert [s["session_id"] for s in sessions] == [session_id]
    assert sessions[0]["current"] is False

    refused = member.get(SESSIONS, params={"user_id": owner_id})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "PERMISSION_DENIED"


def test_s3_admin_revokes_every_session_of_a_member_at_once(
    stack: Stack, db: psycopg.Connection
) -> None:
    """S3: the owner signs a member out everywhere (iam.user.revokeSessions): both of the
    member's browsers are refused at once although they hold cache cookies; the count is
    audited. The member may not do the same to the owner."""
    owner, owner_id, org_id = demo_owner(stack)
    member_id, email = demo_member(stack, owner, org_id)
    desk, tablet = Browser(stack), Browser(stack)
    desk.sign_in(email)
    tablet.sign_in(email)
    _warm(desk)
    _warm(tablet)

    refused = desk.post(f"/api/v1/identity/users/{owner_id}/sessions:revoke", json={})
    assert refused.status_code == 403

    revoked = owner.post(f"/api/v1/identity/users/{member_id}/sessions:revoke", json={})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json() == {"revoked_count": 2}
    assert desk.get(SESSIONS).status_code == 401
    assert tablet.get(SESSIONS).status_code == 401
    assert owner.get(SESSIONS).status_code == 200
    row = wait_for(
        lambda: _audit_row(db, "iam.user.revokeSessions", member_id), what="the revocation"
    )
    assert (row["actor_id"], row["org_id"]) == (owner_id, org_id)
    assert row["diff"] == {"revoked_count": 2}
