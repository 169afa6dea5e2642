"""Org administration and API keys end to end through the gateway, as the demo org's owner:
members with authz user types (Z4), the org sign-in policy (A3, A8), unlocking (A1), API keys
used with `Authorization: Bearer` within their permissions only (Z1); every change audited (L1).
"""

from __future__ import annotations

import hashlib
import uuid

import httpx
import psycopg

from helios.devstack.stack import Stack
from helios.identity.domain.throttle import ThrottleScope, throttle_key

from .conftest import PASSWORD, Browser, demo_owner, sign_up, wait_for


def _client(stack: Stack) -> httpx.Client:
    """A client with no cookie (closed after the test)."""
    return Browser(stack).http


def _client_user_type(owner: Browser) -> str:
    """A new authz user type of the org whose default role is the Client blueprint."""
    roles = owner.get("/api/v1/authz/roles", params={"page_size": 100}).json()["roles"]
    client_role = next(r["role_id"] for r in roles if r["blueprint"] == "ROLE_BLUEPRINT_CLIENT")
    name = f"e2e-client-{uuid.uuid4().hex[:8]}"
    created = owner.post(
        "/api/v1/authz/user-types", json={"name": name, "default_role_id": client_role}
    )
    assert created.status_code == 200, created.text
    return name


def _member(stack: Stack, owner: Browser, org_id: str) -> tuple[Browser, str, str]:
    """A new account added to the org with a Client user type, signed in: client, id, e-mail."""
    email = sign_up(stack, "org-e2e")
    added = owner.post(
        f"/api/v1/identity/orgs/{org_id}/members",
        json={"email": email, "user_type": _client_user_type(owner)},
    )
    assert added.status_code == 200, added.text
    client = Browser(stack)
    reply = client.sign_in(email)
    assert reply["session"]["org_id"] == org_id
    return client, reply["user"]["user_id"], email


def _members(owner: Browser, org_id: str) -> dict[str, str]:
    """Every member of the org (user id -> user type), page by page."""
    found: dict[str, str] = {}
    token = ""
    while True:
        page = owner.get(
            f"/api/v1/identity/orgs/{org_id}/members",
            params={"page_size": 50, "page_token": token},
        )
        assert page.status_code == 200, page.text
        body = page.json()
        found.update({m["user"]["user_id"]: m["user_type"] for m in body["members"]})
        token = body["next_page_token"]
        if not token:
            return found


def _audited(db: psycopg.Connection, actor_id: str, action: str, resource_id: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM audit.audit_log WHERE actor_id = %s AND action = %s AND resource_id = %s",
        (actor_id, action, resource_id),
    ).fetchone()
    return row is not None


def _bearer(stack: Stack, key: str) -> httpx.Client:
    client = _client(stack)
    client.headers["authorization"] = f"Bearer {key}"
    return client


def test_z4_owner_adds_lists_and_removes_a_member_who_cannot_administer(
    stack: Stack, db: psycopg.Connection
) -> None:
    """Z4, Z1, L1: the owner adds an account by e-mail with an authz user type and finds it in
    the member list; adding it again is 409. The member (Client role) is refused 403 on
    AddOrgMember, CreateApiKey and UnlockUser. Removal ends the member's session; both changes
    are in the audit log."""
    owner, owner_id, org_id = demo_owner(stack)
    member, member_id, member_email = _member(stack, owner, org_id)

    assert _members(owner, org_id)[member_id].startswith("e2e-client-")
    again = owner.post(
        f"/api/v1/identity/orgs/{org_id}/members",
        json={"email": member_email, "user_type": "anything"},
    )
    assert again.status_code == 409
    refusals = [
        member.post(
            f"/api/v1/identity/orgs/{org_id}/members",
            json={"email": sign_up(stack, "org-e2e"), "user_type": "anything"},
        ),
        member.post(
            "/api/v1/identity/api-keys",
            json={"org_id": org_id, "name": "mine", "permissions": ["identity.mfa.read"]},
        ),
        member.post("/api/v1/identity/users:unlock", json={"email": member_email}),
    ]
    assert [r.status_code for r in refusals] == [403, 403, 403]
    assert all(r.json()["error"]["code"] == "PERMISSION_DENIED" for r in refusals)

    removed = owner.delete(f"/api/v1/identity/orgs/{org_id}/members/{member_id}")

    assert removed.status_code == 200, removed.text
    assert member_id not in _members(owner, org_id)
    member.cookies.pop("helios_session_cache", None)  # skip the 60 s cache: ask identity
    assert member.get("/api/v1/identity/me").status_code == 401
    for action in ("identity.member.add", "identity.member.remove"):
        wait_for(lambda a=action: _audited(db, owner_id, a, member_id), what=action)


def test_a3_a8_owner_updates_the_org_sign_in_policy(stack: Stack, db: psycopg.Connection) -> None:
    """A3, A8, L1: the owner allows magic links for the org: the answer and the row show it, the
    change is audited; the policy is put back afterwards."""
    owner, owner_id, org_id = demo_owner(stack)
    path = f"/api/v1/identity/orgs/{org_id}/auth-policy"
    try:
        updated = owner.post(path, json={"auth_policy": {"magic_link_enabled": True}})
        assert updated.status_code == 200, updated.text
        assert updated.json()["org"]["auth_policy"] == {
            "require_mfa": False,
            "magic_link_enabled": True,
        }
        row = db.execute(
            "SELECT require_mfa, magic_link_enabled FROM identity.orgs WHERE id = %s", (org_id,)
        ).fetchone()
        assert row == (False, True)
        wait_for(
            lambda: _audited(db, owner_id, "identity.org.updateAuthPolicy", org_id),
            what="the policy change in the audit log",
        )
    finally:
        restored = owner.post(path, json={"auth_policy": {"magic_link_enabled": False}})
        assert restored.status_code == 200


def test_a1_owner_unlocks_a_locked_out_member(stack: Stack, db: psycopg.Connection) -> None:
    """A1: a member whose account is locked out (the lockout row the throttle writes after too
    many failures) cannot sign in (429) until the owner unlocks it; the unlock is audited."""
    owner, owner_id, org_id = demo_owner(stack)
    _, member_id, member_email = _member(stack, owner, org_id)
    db.execute(
        "INSERT INTO identity.sign_in_lockouts (key, scope, locked_until)"
        " VALUES (%s, 'account', now() + interval '15 minutes')",
        (throttle_key(ThrottleScope.ACCOUNT, member_email).digest,),
    )
    sign_in = {"email": member_email, "password": PASSWORD}
    assert _client(stack).post("/api/auth/sign-in", json=sign_in).status_code == 429

    unlocked = owner.post("/api/v1/identity/users:unlock", json={"email": member_email})

    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json() == {"lifted": True}
    assert _client(stack).post("/api/auth/sign-in", json=sign_in).status_code == 200
    wait_for(
        lambda: _audited(db, owner_id, "identity.user.signInUnlocked", member_id),
        what="the unlock in the audit log",
    )


def test_z1_api_key_works_only_within_its_permissions_until_revoked_or_expired(
    stack: Stack, db: psycopg.Connection
) -> None:
    """Z1, L1: the owner creates an API key for `iam.member.list`: shown once, only the hash of
    its secret stored. With `Authorization: Bearer` it lists the members (200) and is refused
    (403) on a route outside its permissions and on the cookie routes, and by session-bound RPCs
    within them; a key with a permission the owner lacks is refused; after revocation, or once
    expired, the key is 401."""
    owner, owner_id, org_id = demo_owner(stack)

    def create(permissions: list[str]) -> httpx.Response:
        return owner.post(
            "/api/v1/identity/api-keys",
            json={"org_id": org_id, "name": "e2e", "permissions": permissions, "ttl_days": 1},
        )

    created = create(["iam.member.list"])
    assert created.status_code == 200, created.text
    key_id, key = created.json()["api_key_id"], created.json()["api_key"]
    assert key.startswith("hk_")
    secret = key[36:]  # hk_ + 32 hex + _
    row = db.execute("SELECT * FROM identity.api_keys WHERE id = %s", (key_id,)).fetchone()
    assert row is not None
    assert hashlib.sha256(secret.encode()).digest() in row
    assert not any(secret in str(value) for value in row)
    listed = owner.get(f"/api/v1/identity/orgs/{org_id}/api-keys").json()["api_keys"]
    assert "api_key" not in next(k for k in listed if k["api_key_id"] == key_id)

    machine = _bearer(stack, key)
    members = machine.get(f"/api/v1/identity/orgs/{org_id}/members")
    assert members.status_code == 200, members.text
    assert owner_id in {m["user"]["user_id"] for m in members.json()["members"]}
    outside = [
        machine.get(f"/api/v1/identity/orgs/{org_id}/api-keys"),
        machine.get("/api/v1/identity/me"),
        machine.post("/api/auth/sign-out"),
        machine.get("/api/auth/session"),
    ]
    assert [r.status_code for r in outside] == [403, 403, 403, 403]
    assert create(["iam.member.list", "platform.org.create"]).status_code == 403
    # A key has no session: session-bound RPCs refuse it cleanly even within its permissions.
    reader = _bearer(stack, create(["identity.user.read"]).json()["api_key"])
    me = reader.get("/api/v1/identity/me")
    assert me.status_code == 403, me.text
    assert "not an API key" in me.json()["error"]["message"]
    assert (
        _bearer(stack, "hk_" + "0" * 32 + "_" + "A" * 43).get("/api/v1/identity/me").status_code
        == 401
    )
    assert _bearer(stack, "some-other-token").get("/api/v1/identity/me").status_code == 401

    revoked = owner.delete(f"/api/v1/identity/api-keys/{key_id}")
    assert revoked.status_code == 200, revoked.text
    after_revoke = machine.get(f"/api/v1/identity/orgs/{org_id}/members")
    assert after_revoke.status_code == 401
    assert after_revoke.json()["error"]["code"] == "UNAUTHENTICATED"

    expiring = create(["iam.member.list"]).json()
    expiring_key = _bearer(stack, expiring["api_key"])
    assert expiring_key.get(f"/api/v1/identity/orgs/{org_id}/members").status_code == 200
    db.execute(
        "UPDATE identity.api_keys SET expires_at = now() - interval '1 second' WHERE id = %s",
        (expiring["api_key_id"],),
    )
    assert expiring_key.get(f"/api/v1/identity/orgs/{org_id}/members").status_code == 401
    for action in ("identity.apiKey.create", "identity.apiKey.revoke"):
        wait_for(lambda a=action: _audited(db, owner_id, a, key_id), what=action)
