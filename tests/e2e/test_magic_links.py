"""Magic-link sign-in through the gateway (A8): the mailed link signs in once and sets the
session cookies; off unless enabled for the org; one answer for every address."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import httpx
import psycopg

from helios.devstack.stack import Stack

PASSWORD = "correct horse battery"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SUBJECT = "Your Helios sign-in link"
BAD_LINK = "this link is invalid or has expired"


def _email() -> str:
    return f"magic-{uuid.uuid4().hex[:10]}@example.com"


def _post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers={"user-agent": UA}, timeout=15)


def _sign_up(stack: Stack, email: str) -> str:
    reply = _post(stack.gateway_url, "/api/auth/sign-up", {"email": email, "password": PASSWORD})
    assert reply.status_code == 201, reply.text
    return str(reply.json()["user"]["user_id"])


def _org_with_member(
    db: psycopg.Connection, user_id: str, *, magic_links: bool, require_mfa: bool = False
) -> str:
    """An org of the test's own (policy as given) with the user as its member, written straight
    into identity's tables (UpdateOrgAuthPolicy is another area's)."""
    org_id = str(uuid.uuid4())
    db.execute(
        "INSERT INTO identity.orgs (id, slug, name, created_at, magic_link_enabled, require_mfa) "
        "VALUES (%s, %s, 'Magic e2e', now(), %s, %s)",
        (org_id, f"magic-{org_id[:12]}", magic_links, require_mfa),
    )
    db.execute(
        "INSERT INTO identity.memberships (org_id, user_id, user_type) VALUES (%s, %s, 'employee')",
        (org_id, user_id),
    )
    return org_id


def _request_link(stack: Stack, email: str) -> httpx.Response:
    return _post(stack.gateway_url, "/api/v1/identity/magic-link:request", {"email": email})


def _redeem(stack: Stack, token: str) -> httpx.Response:
    return _post(stack.gateway_url, "/api/auth/magic-link", {"token": token})


def _link_token(stack: Stack, email: str) -> str:
    mail = stack.wait_for_mail(email, SUBJECT)
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.search(
        re.escape(stack.gateway_url) + r"/magic-link\?token=(hlo_[A-Za-z0-9_-]+)",
        body.get_content(),
    )
    assert found is not None, body.get_content()
    return found.group(1)


def _queued(db: psycopg.Connection, email: str) -> int:
    row = db.execute(
        "SELECT count(*) FROM identity.mail_outbox WHERE to_address = %s AND subject = %s",
        (email, SUBJECT),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_a8_magic_link_signs_in_once_through_the_gateway(
    stack: Stack, db: psycopg.Connection
) -> None:
    """A8: for a member of an org with magic links on, the mailed link (15 minutes, only its
    hash stored) signs in through POST /api/auth/magic-link, which sets the session cookies;
    the session works; the second use is refused without cookies."""
    email = _email()
    user_id = _sign_up(stack, email)
    _org_with_member(db, user_id, magic_links=True)

    requested = _request_link(stack, email)
    assert requested.status_code == 200, requested.text
    token = _link_token(stack, email)
    stored = db.execute(
        "SELECT token_hash, expires_at - created_at FROM identity.email_tokens "
        "WHERE user_id = %s AND purpose = 'magic_link'",
        (user_id,),
    ).fetchall()
    assert len(stored) == 1
    assert stored[0][1] == dt.timedelta(minutes=15)
    assert token.encode() not in bytes(stored[0][0])

    signed_in = _redeem(stack, token)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["session"]["method"] == "magic_link"
    assert "session_token" not in signed_in.json()
    jar = {cookie.name: cookie.value for cookie in signed_in.cookies.jar}
    assert jar["helios_session"].startswith("hls_")
    assert jar["helios_csrf"]
    session = httpx.get(
        f"{stack.gateway_url}/api/auth/session",
        headers={"cookie": f"helios_session={jar['helios_session']}"},
        timeout=15,
    )
    assert session.status_code == 200, session.text
    assert session.json()["user"]["user_id"] == user_id

    again = _redeem(stack, token)
    assert again.status_code == 400
    assert again.json()["error"]["message"] == BAD_LINK
    assert "helios_session" not in {cookie.name for cookie in again.cookies.jar}


def test_a8_same_answer_for_unknown_disabled_and_enabled_addresses(
    stack: Stack, db: psycopg.Connection
) -> None:
    """A8: an address with magic links on, one with them off (the default) and one with no
    account get the same answer; only the first gets a link."""
    enabled, disabled, unknown = _email(), _email(), _email()
    _org_with_member(db, _sign_up(stack, enabled), magic_links=True)
    _org_with_member(db, _sign_up(stack, disabled), magic_links=False)

    answers = [_request_link(stack, email) for email in (enabled, disabled, unknown)]
    assert {(a.status_code, a.text) for a in answers} == {(200, answers[0].text)}
    assert [_queued(db, email) for email in (enabled, disabled, unknown)] == [1, 0, 0]


def test_a8_link_refused_once_magic_links_are_disabled(
    stack: Stack, db: psycopg.Connection
) -> None:
    """A8: a link mailed while the org allowed magic links is refused after the org turned them
    off, and no session cookie is set."""
    email = _email()
    org_id = _org_with_member(db, _sign_up(stack, email), magic_links=True)
    assert _request_link(stack, email).status_code == 200
    token = _link_token(stack, email)
    db.execute("UPDATE identity.orgs SET magic_link_enabled = false WHERE id = %s", (org_id,))

    refused = _redeem(stack, token)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "FAILED_PRECONDITION"
    assert "helios_session" not in {cookie.name for cookie in refused.cookies.jar}


def test_a8_unknown_token_refused(stack: Stack) -> None:
    """A8: a token the service never issued is refused like a used one."""
    refused = _redeem(stack, "hlo_" + "A" * 43)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == BAD_LINK


def test_a8_magic_link_with_a_required_second_factor_returns_the_challenge_without_cookies(
    stack: Stack, db: psycopg.Connection
) -> None:
    """A8 + A3: in an org that requires a second factor the link is a first factor only: the
    answer is the challenge (with its token) and no session cookie."""
    email = _email()
    _org_with_member(db, _sign_up(stack, email), magic_links=True, require_mfa=True)
    assert _request_link(stack, email).status_code == 200

    reply = _redeem(stack, _link_token(stack, email))
    assert reply.status_code == 200, reply.text
    challenge = reply.json()["second_factor"]
    assert challenge["challenge_token"].startswith("hlo_")
    assert "SECOND_FACTOR_METHOD_EMAIL_OTP" in challenge["methods"]
    assert "helios_session" not in {cookie.name for cookie in reply.cookies.jar}
