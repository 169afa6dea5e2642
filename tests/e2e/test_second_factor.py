"""Second factors through the gateway (A3, A9): TOTP enrolment and sign-in, single-use codes,
e-mailed codes delivered to the stack's SMTP sink, the org policy that forces a second factor,
remembered devices, forged challenges, concurrent completions; every step in the audit log."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pyotp
import pytest

from helios.devstack.stack import Stack
from helios.proto.audit.v1 import events_pb2

PASSWORD = "correct horse battery"
UA = "Mozilla/5.0 (X11; Linux x86_64) helios-e2e-second-factor"
TOTP = "SECOND_FACTOR_METHOD_TOTP"
BACKUP = "SECOND_FACTOR_METHOD_BACKUP_CODE"
EMAIL = "SECOND_FACTOR_METHOD_EMAIL_OTP"
SUCCESS = events_pb2.AUDIT_OUTCOME_SUCCESS
FAILURE = events_pb2.AUDIT_OUTCOME_FAILURE
OTP_SUBJECT = "sign-in code"


@pytest.fixture
def http(stack: Stack) -> Iterator[Callable[[], httpx.Client]]:
    """Makes cookie-less HTTP clients of the gateway (closed when the test ends)."""
    made: list[httpx.Client] = []

    def make() -> httpx.Client:
        client = httpx.Client(base_url=stack.gateway_url, timeout=15, headers={"user-agent": UA})
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def _wait_for(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
    return value


def _cookies(reply: httpx.Response) -> dict[str, str]:
    return {cookie.name: cookie.value for cookie in reply.cookies.jar}


def _set_cookie(reply: httpx.Response, name: str) -> str:
    """The Set-Cookie header of `name` (its attributes included)."""
    (header,) = [h for h in reply.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    return header


def _adopt(client: httpx.Client, reply: httpx.Response, stack: Stack) -> None:
    """Send the cookies `reply` set explicitly (they are Secure; the local gateway speaks plain
    HTTP), with the CSRF double-submit header."""
    jar = _cookies(reply)
    client.headers["cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items() if v)
    client.headers["x-csrf-token"] = jar["helios_csrf"]
    client.headers["origin"] = stack.gateway_url


def _sign_in(
    client: httpx.Client, email: str, device: str = "", password: str = PASSWORD
) -> httpx.Response:
    headers = {"cookie": f"helios_device={device}"} if device else {}
    reply = client.post(
        "/api/auth/sign-in", json={"email": email, "password": password}, headers=headers
    )
    assert reply.status_code == 200, reply.text
    return reply


def _challenge(client: httpx.Client, email: str, device: str = "") -> dict[str, Any]:
    """Sign in: no session cookie, a challenge in the body instead."""
    reply = _sign_in(client, email, device)
    assert "helios_session" not in _cookies(reply)
    assert "helios_csrf" not in _cookies(reply)
    challenge: dict[str, Any] = reply.json()["second_factor"]
    assert challenge["challenge_token"].startswith("hlo_")
    return challenge


def _complete(
    client: httpx.Client, token: str, method: str, code: str, remember: bool = False
) -> httpx.Response:
    return client.post(
        "/api/auth/second-factor",
        json={
            "challenge_token": token,
            "method": method,
            "code": code,
            "remember_device": remember,
        },
    )


def _member_of_demo(stack: Stack, db: psycopg.Connection, make: Callable[[], httpx.Client]) -> str:
    """A new user of the demo org holding its Employee role (which grants the `own` mfa and
    device permissions); returns the e-mail. The membership row is written straight into
    identity's table (member management is another area's)."""
    email = f"mfa-{uuid.uuid4().hex[:10]}@example.com"
    signed_up = make().post("/api/auth/sign-up", json={"email": email, "password": PASSWORD})
    assert signed_up.status_code == 201, signed_up.text
    user_id = signed_up.json()["user"]["user_id"]
    row = db.execute("SELECT id FROM identity.orgs WHERE slug = 'demo'").fetchone()
    assert row is not None
    org_id = str(row[0])
    db.execute(
        "INSERT INTO identity.memberships (org_id, user_id, user_type) VALUES (%s, %s, 'employee')",
        (org_id, user_id),
    )
    owner = make()
    creds = stack.demo_credentials
    _adopt(owner, _sign_in(owner, creds["email"], password=creds["password"]), stack)
    roles = owner.get("/api/v1/authz/roles", params={"org_id": org_id})
    assert roles.status_code == 200, roles.text
    (employee,) = [r for r in roles.json()["roles"] if r["blueprint"] == "ROLE_BLUEPRINT_EMPLOYEE"]
    assigned = owner.post(
        f"/api/v1/authz/roles/{employee['role_id']}/assignments",
        json={"org_id": org_id, "user_id": user_id},
    )
    assert assigned.status_code == 200, assigned.text
    return email


def _strict_member(stack: Stack, db: psycopg.Connection, make: Callable[[], httpx.Client]) -> str:
    """A new user who belongs to a new org whose policy requires a second factor (the org row
    is written straight into identity's table: org administration is another area's)."""
    email = f"strict-{uuid.uuid4().hex[:10]}@example.com"
    signed_up = make().post("/api/auth/sign-up", json={"email": email, "password": PASSWORD})
    assert signed_up.status_code == 201, signed_up.text
    org_id = uuid.uuid4()
    db.execute(
        "INSERT INTO identity.orgs (id, slug, name, created_at, require_mfa) "
        "VALUES (%s, %s, 'Strict', now(), true)",
        (org_id, f"strict-{org_id.hex[:8]}"),
    )
    db.execute(
        "INSERT INTO identity.memberships (org_id, user_id, user_type) VALUES (%s, %s, 'member')",
        (org_id, signed_up.json()["user"]["user_id"]),
    )
    return email


def _enrol_totp(stack: Stack, client: httpx.Client, email: str) -> tuple[pyotp.TOTP, list[str]]:
    """Sign in, enrol and confirm TOTP; returns the authenticator and the backup codes."""
    _adopt(client, _sign_in(client, email), stack)
    enrolled = client.post("/api/v1/identity/mfa/totp:enroll", json={})
    assert enrolled.status_code == 200, enrolled.text
    uri = enrolled.json()["otpauth_uri"]
    assert enrolled.json()["qr_svg"].startswith("<svg")
    assert parse_qs(urlsplit(uri).query)["issuer"] == ["Helios"]
    totp = pyotp.TOTP(parse_qs(urlsplit(uri).query)["secret"][0])
    confirmed = client.post("/api/v1/identity/mfa/totp:confirm", json={"code": totp.now()})
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["backup_codes"]
    assert len(codes) == 10
    return totp, codes


def _mailed_code(stack: Stack, email: str, count: int) -> str:
    """The code of the `count`-th sign-in code mail to `email`, once it reached the sink."""
    mails = _wait_for(
        lambda: (
            len(found := [m for m in stack.mails(email) if OTP_SUBJECT in str(m["Subject"])])
            >= count
            and found
        ),
        f"sign-in code mail #{count}",
    )
    body = mails[count - 1].get_body().get_content()
    match = re.search(r"\b(\d{6})\b", body)
    assert match is not None
    return match.group(1)


def _audited(db: psycopg.Connection, actor_id: str) -> list[tuple[str, int]]:
    rows = db.execute(
        "SELECT action, outcome FROM audit.audit_log WHERE actor_id = %s ORDER BY seq",
        (actor_id,),
    ).fetchall()
    return [(str(action), int(outcome)) for action, outcome in rows]


def _user_id(db: psycopg.Connection, email: str) -> str:
    row = db.execute("SELECT id FROM identity.users WHERE email = %s", (email,)).fetchone()
    assert row is not None
    return str(row[0])


def test_a3_totp_user_cannot_get_a_session_from_the_password_alone(
    stack: Stack, db: psycopg.Connection, http: Callable[[], httpx.Client]
) -> None:
    """A3: after TOTP enrolment the password gives no cookie but a challenge (TOTP, backup
    codes, e-mail); a wrong code is 401; the right one sets the session and CSRF cookies
    (method totp); the same code is refused at the next sign-in; the status shows TOTP on and
    10 backup codes; every step is in the audit log."""
    email = _member_of_demo(stack, db, http)
    app = http()
    totp, _ = _enrol_totp(stack, app, email)
    status = app.get("/api/v1/identity/mfa")
    assert status.status_code == 200, status.text
    assert status.json()["totp_enrolled"] is True
    assert status.json()["backup_codes_remaining"] == 10

    browser = http()
    challenge = _challenge(browser, email)
    assert challenge["methods"] == [TOTP, BACKUP, EMAIL]
    # The confirming code used the current step; the next step's code is accepted (+1 window).
    code = totp.at(time.time() + 30)
    wrong = _complete(browser, challenge["challenge_token"], TOTP, f"{(int(code) + 1) % 10**6:06d}")
    assert wrong.status_code == 401
    assert "helios_session" not in _cookies(wrong)

    done = _complete(browser, challenge["challenge_token"], TOTP, code)
    assert done.status_code == 200, done.text
    assert "session_token" not in done.json()
    assert done.json()["session"]["method"] == "totp"
    session_cookie = _set_cookie(done, "helios_session")
    assert "HttpOnly" in session_cookie
    assert "samesite=lax" in session_cookie.lower()
    signed_in = http()
    _adopt(signed_in, done, stack)
    current = signed_in.get("/api/auth/session")
    assert current.status_code == 200
    assert current.json()["user"]["email"] == email

    replay = _complete(browser, _challenge(browser, email)["challenge_token"], TOTP, code)
    assert replay.status_code == 401
    user_id = _user_id(db, email)
    expected = [
        ("identity.mfa.totpEnroll", SUCCESS),
        ("identity.mfa.totpConfirm", SUCCESS),
        ("identity.user.secondFactorRequired", SUCCESS),
        ("identity.user.signIn", FAILURE),
        ("identity.user.signIn", SUCCESS),
    ]
    _wait_for(lambda: all(step in _audited(db, user_id) for step in expected), "the audited steps")


def test_a3_backup_code_works_once(
    stack: Stack, db: psycopg.Connection, http: Callable[[], httpx.Client]
) -> None:
    """A3: a backup code opens one session (method backup_code) and is refused afterwards;
    regenerating replaces every code; the status counts what is left."""
    email = _member_of_demo(stack, db, http)
    app = http()
    _, codes = _enrol_totp(stack, app, email)
    browser = http()

    done = _complete(browser, _challenge(browser, email)["challenge_token"], BACKUP, codes[0])
    assert done.status_code == 200, done.text
    assert done.json()["session"]["method"] == "backup_code"
    again = _complete(browser, _challenge(browser, email)["challenge_token"], BACKUP, codes[0])
    assert again.status_code == 401
    assert app.get("/api/v1/identity/mfa").json()["backup_codes_remaining"] == 9

    fresh = app.post("/api/v1/identity/mfa/backup-codes:regenerate", json={})
    assert fresh.status_code == 200, fresh.text
    new_codes = fresh.json()["backup_codes"]
    assert len(new_codes) == 10
    token = _challenge(browser, email)["challenge_token"]
    assert _complete(browser, token, BACKUP, codes[1]).status_code == 401
    assert _complete(browser, token, BACKUP, new_codes[0]).status_code == 200


def test_a3_org_requiring_2fa_mails_a_code_capped_at_five_attempts(
    stack: Stack, db: psycopg.Connection, http: Callable[[], httpx.Client]
) -> None:
    """A3: a member of an org requiring 2FA, with no factor enrolled, is challenged by e-mail:
    the 6-digit code arrives in the SMTP sink; after 5 wrong codes even the right one is
    refused; a new sign-in's fresh code opens the session (method email_otp)."""
    email = _strict_member(stack, db, http)
    browser = http()
    challenge = _challenge(browser, email)
    assert challenge["methods"] == [EMAIL]
    token = challenge["challenge_token"]
    sent = browser.post("/api/v1/identity/mfa/email-otp:send", json={"challenge_token": token})
    assert sent.status_code == 200, sent.text
    code = _mailed_code(stack, email, 1)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(5):
        assert _complete(browser, token, EMAIL, wrong).status_code == 401
    sixth = _complete(browser, token, EMAIL, code)
    assert sixth.status_code == 401
    assert "helios_session" not in _cookies(sixth)

    token = _challenge(browser, email)["challenge_token"]
    sent = browser.post("/api/v1/identity/mfa/email-otp:send", json={"challenge_token": token})
    assert sent.status_code == 200, sent.text
    done = _complete(browser, token, EMAIL, _mailed_code(stack, email, 2))
    assert done.status_code == 200, done.text
    assert done.json()["session"]["method"] == "email_otp"
    user_id = _user_id(db, email)
    _wait_for(
        lambda: _audited(db, user_id).count(("identity.mfa.emailOtpSend", SUCCESS)) == 2,
        "the audited code mails",
    )


def test_a9_remembered_device_skips_2fa_until_revoked(
    stack: Stack, db: psycopg.Connection, http: Callable[[], httpx.Client]
) -> None:
    """A9: "remember this device" sets the HttpOnly device cookie; the next sign-in with it
    opens a session without a challenge; the device is listed with its last use; after
    RevokeRememberedDevice the same cookie gets a challenge again."""
    email = _member_of_demo(stack, db, http)
    app = http()
    _, codes = _enrol_totp(stack, app, email)
    browser = http()
    done = _complete(
        browser, _challenge(browser, email)["challenge_token"], BACKUP, codes[0], remember=True
    )
    assert done.status_code == 200, done.text
    assert "device_token" not in done.json()
    header = _set_cookie(done, "helios_device")
    assert "HttpOnly" in header
    assert "samesite=lax" in header.lower()
    assert "Max-Age=31536000" in header
    device = _cookies(done)["helios_device"]
    assert device.startswith("hld_")

    skipped = _sign_in(browser, email, device)
    assert "second_factor" not in skipped.json()
    assert _cookies(skipped)["helios_session"].startswith("hls_")
    listed = app.get("/api/v1/identity/devices")
    assert listed.status_code == 200, listed.text
    (remembered,) = listed.json()["devices"]
    assert remembered["user_agent"] == UA
    assert remembered["last_used_at"]

    revoked = app.delete(f"/api/v1/identity/devices/{remembered['device_id']}")
    assert revoked.status_code == 200, revoked.text
    assert _challenge(browser, email, device)["methods"] == [TOTP, BACKUP, EMAIL]
    assert app.get("/api/v1/identity/devices").json()["devices"] == []
    user_id = _user_id(db, email)
    expected = [
        ("identity.device.remember", SUCCESS),
        ("identity.device.use", SUCCESS),
        ("identity.device.revoke", SUCCESS),
    ]
    _wait_for(lambda: all(step in _audited(db, user_id) for step in expected), "device audit")


def test_a3_forged_challenge_token_refused(http: Callable[[], httpx.Client]) -> None:
    """A3: a forged challenge token is 401 at the second-factor route and at the e-mailed code
    route, and sets no cookie; a missing method is 400."""
    browser = http()
    forged = "hlo_" + "x" * 43
    refused = _complete(browser, forged, EMAIL, "123456")
    assert refused.status_code == 401
    assert refused.headers.get_list("set-cookie") == []
    send = browser.post("/api/v1/identity/mfa/email-otp:send", json={"challenge_token": forged})
    assert send.status_code == 401
    missing = browser.post("/api/auth/second-factor", json={"challenge_token": forged})
    assert missing.status_code == 400


async def test_a3_concurrent_completions_open_exactly_one_session(
    stack: Stack, db: psycopg.Connection, http: Callable[[], httpx.Client]
) -> None:
    """A3: eight concurrent completions of one challenge with the right e-mailed code open
    exactly one session; the others are refused."""
    email = _strict_member(stack, db, http)
    browser = http()
    token = _challenge(browser, email)["challenge_token"]
    sent = browser.post("/api/v1/identity/mfa/email-otp:send", json={"challenge_token": token})
    assert sent.status_code == 200, sent.text
    code = _mailed_code(stack, email, 1)

    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15) as client:
        replies = await asyncio.gather(
            *(
                client.post(
                    "/api/auth/second-factor",
                    json={"challenge_token": token, "method": EMAIL, "code": code},
                )
                for _ in range(8)
            )
        )
    assert sorted(reply.status_code for reply in replies) == [200] + [401] * 7
    row = db.execute(
        "SELECT count(*) FROM identity.sessions WHERE user_id = %s", (_user_id(db, email),)
    ).fetchone()
    assert row == (1,)
