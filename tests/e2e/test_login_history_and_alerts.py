"""Login history and unknown-device alerts through the gateway (S4, S5): city and country are
believed only from a trusted proxy; every sign-in outcome is in the user's history; admins read
their members' history, others do not."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import psycopg
import pytest

from helios.devstack.stack import Stack

PASSWORD = "correct horse battery"
ALERT = "New sign-in to your Helios account"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
# What Cloudflare adds in front of a trusted proxy; the city as UTF-8 bytes.
ZURICH = {
    "cf-connecting-ip": "198.51.100.77",
    "cf-ipcity": "Zürich".encode(),
    "cf-ipcountry": "CH",
}


@pytest.fixture(scope="module")
def proxied_gateway(stack: Stack) -> str:
    """A gateway replica that trusts 127.0.0.1 as its proxy (as one behind Cloudflare would
    trust Cloudflare's ranges): its CF-* headers are believed."""
    return stack.start_gateway("gateway-s4-proxied", {"HELIOS_TRUSTED_PROXIES": '["127.0.0.1/32"]'})


@pytest.fixture
def clients() -> Iterator[list[httpx.Client]]:
    opened: list[httpx.Client] = []
    yield opened
    for client in opened:
        client.close()


def _email() -> str:
    return f"seen-{uuid.uuid4().hex[:10]}@example.com"


def _sign_up(stack: Stack, email: str) -> str:
    reply = httpx.post(
        f"{stack.gateway_url}/api/auth/sign-up",
        json={"email": email, "password": PASSWORD},
        timeout=15,
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["user"]["user_id"])


def _sign_in(
    url: str,
    email: str,
    agent: str,
    headers: dict[str, Any] | None = None,
    password: str = PASSWORD,
) -> httpx.Response:
    return httpx.post(
        f"{url}/api/auth/sign-in",
        json={"email": email, "password": password},
        headers={"user-agent": agent, **(headers or {})},
        timeout=15,
    )


def _session(stack: Stack, clients: list[httpx.Client], signed_in: httpx.Response) -> httpx.Client:
    """A client of the main gateway holding the session of `signed_in` (cookies are Secure and
    the local gateway speaks plain HTTP: sent explicitly)."""
    assert signed_in.status_code == 200, signed_in.text
    jar = {cookie.name: cookie.value for cookie in signed_in.cookies.jar}
    client = httpx.Client(base_url=stack.gateway_url, timeout=15)
    client.headers["cookie"] = f"helios_session={jar['helios_session']}"
    clients.append(client)
    return client


def _alerts(stack: Stack, email: str) -> list[EmailMessage]:
    return [mail for mail in stack.mails(email) if ALERT in str(mail["Subject"])]


def _queued_alerts(db: psycopg.Connection, email: str) -> int:
    row = db.execute(
        "SELECT count(*) FROM identity.mail_outbox WHERE to_address = %s AND subject = %s",
        (email, ALERT),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _text(mail: EmailMessage) -> str:
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def test_s5_history_lists_successes_and_failures_with_method_ip_and_geo(
    stack: Stack, proxied_gateway: str, clients: list[httpx.Client]
) -> None:
    """S5: a failed and a successful sign-in through a trusted proxy are in the user's history,
    newest first, with method, client IP, city, country, browser and device."""
    email = _email()
    user_id = _sign_up(stack, email)
    assert _sign_in(proxied_gateway, email, FIREFOX, ZURICH, password="wrong!").status_code == 401
    me = _session(stack, clients, _sign_in(proxied_gateway, email, FIREFOX, ZURICH))

    reply = me.get("/api/v1/identity/login-history")
    assert reply.status_code == 200, reply.text
    success, failure = reply.json()["events"]
    assert (success["outcome"], success["method"], success["failure_reason"]) == (
        "success",
        "password",
        "",
    )
    assert (failure["outcome"], failure["method"], failure["failure_reason"]) == (
        "failure",
        "password",
        "bad_credentials",
    )
    for event in (success, failure):
        assert event["user_id"] == user_id
        assert (event["ip"], event["city"], event["country"]) == ("198.51.100.77", "Zürich", "CH")
        assert event["user_agent"] == FIREFOX
        assert event["device_id"]
    assert dt.datetime.fromisoformat(success["time"]) >= dt.datetime.fromisoformat(failure["time"])


def test_s5_non_admin_cannot_read_another_users_history_an_admin_can(
    stack: Stack, db: psycopg.Connection, clients: list[httpx.Client]
) -> None:
    """S5: a user without `identity.loginHistory.list` at scope any (no role) is refused
    another user's history; the owner of org "demo" reads the history of a demo member."""
    member, other = _email(), _email()
    member_id = _sign_up(stack, member)
    _sign_up(stack, other)
    assert _sign_in(stack.gateway_url, member, FIREFOX).status_code == 200
    db.execute(
        "INSERT INTO identity.memberships (org_id, user_id, user_type) "
        "SELECT id, %s, 'employee' FROM identity.orgs WHERE slug = %s",
        (member_id, stack.demo_credentials["org"]),
    )

    stranger = _session(stack, clients, _sign_in(stack.gateway_url, other, FIREFOX))
    refused = stranger.get("/api/v1/identity/login-history", params={"user_id": member_id})
    assert refused.status_code == 403, refused.text

    demo = stack.demo_credentials
    owner = _session(
        stack,
        clients,
        _sign_in(stack.gateway_url, demo["email"], FIREFOX, password=demo["password"]),
    )
    allowed = owner.get("/api/v1/identity/login-history", params={"user_id": member_id})
    assert allowed.status_code == 200, allowed.text
    assert [(e["user_id"], e["outcome"]) for e in allowed.json()["events"]] == [
        (member_id, "success")
    ]


def test_s4_unknown_device_alert_has_geo_only_via_a_trusted_proxy(
    stack: Stack, proxied_gateway: str, db: psycopg.Connection
) -> None:
    """S4: the first sign-in does not alert; a new device through the trusted proxy alerts
    with city and country; a new device whose client sent CF-* headers itself alerts without
    them; a known device does not alert again."""
    email = _email()
    _sign_up(stack, email)
    assert _sign_in(stack.gateway_url, email, FIREFOX).status_code == 200
    assert _queued_alerts(db, email) == 0

    assert _sign_in(proxied_gateway, email, CHROME_MAC, ZURICH).status_code == 200
    proxied = _text(stack.wait_for_mail(email, ALERT))
    assert "Where: Zürich, CH (IP address 198.51.100.77)" in proxied
    assert "Browser: Chrome on macOS" in proxied
    assert f"{stack.gateway_url}/account/sessions" in proxied

    spoofed = {"cf-connecting-ip": "8.8.8.8", "cf-ipcity": "Paris", "cf-ipcountry": "FR"}
    assert _sign_in(stack.gateway_url, email, SAFARI_IPHONE, spoofed).status_code == 200
    assert _queued_alerts(db, email) == 2
    direct = next(
        text for text in map(_text, _wait_for_alerts(stack, email, 2)) if "Safari on iOS" in text
    )
    assert "Where: an unknown location (IP address 127.0.0.1)" in direct
    assert "Paris" not in direct
    assert ", FR" not in direct

    assert _sign_in(stack.gateway_url, email, SAFARI_IPHONE, spoofed).status_code == 200
    assert _sign_in(proxied_gateway, email, CHROME_MAC, ZURICH).status_code == 200
    assert _queued_alerts(db, email) == 2


def _wait_for_alerts(
    stack: Stack, email: str, count: int, timeout: float = 20.0
) -> list[EmailMessage]:
    """The alert mails to `email` once `count` of them reached the SMTP sink."""
    deadline = time.monotonic() + timeout
    while True:
        found = _alerts(stack, email)
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} alerts reached {email} in {timeout} s")
        time.sleep(0.1)
