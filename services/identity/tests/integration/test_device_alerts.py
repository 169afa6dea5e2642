"""Unknown-device alerts over gRPC against real PostgreSQL (S4): a sign-in from a device never
seen for the user queues a mail saying when, where (city, country from the edge) and with which
browser; the first sign-in of an account, a known device and failed attempts do not alert."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from helios.identity.service.device_alerts import browser_family, device_fingerprint
from helios.identity.store import tables
from helios.kernel.clients import call_metadata
from helios.kernel.context import CallContext
from helios.kernel.testing.audit_events import AuditEvents
from helios.proto.identity.v1 import identity_pb2

PASSWORD = "correct horse battery staple"
ALERT = "New sign-in to your Helios account"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
FIREFOX_NEXT = "Mozilla/5.0 (X11; Linux x86_64; rv:129.0) Gecko/20100101 Firefox/129.0"
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
HOME = call_metadata(client_ip="203.0.113.9", user_agent=FIREFOX)

TableRows = Callable[[Any], Awaitable[list[Any]]]


def _email() -> str:
    return f"hopper.{uuid.uuid4().hex[:10]}@example.com"


async def _sign_up(stub: Any, email: str) -> str:
    response = await stub.SignUp(
        identity_pb2.SignUpRequest(email=email, password=PASSWORD), metadata=HOME, timeout=10
    )
    return str(response.user.user_id)


async def _sign_in(stub: Any, email: str, metadata: Any, password: str = PASSWORD) -> None:
    await stub.SignIn(
        identity_pb2.SignInRequest(email=email, password=password), metadata=metadata, timeout=10
    )


async def _alerts(table_rows: TableRows, to: str) -> list[Any]:
    return [
        row
        for row in await table_rows(tables.mail_outbox)
        if row.to_address == to and row.subject == ALERT
    ]


@pytest.mark.parametrize(
    ("user_agent", "family"),
    [
        (FIREFOX, "Firefox on Linux"),
        (CHROME_MAC, "Chrome on macOS"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        ("curl/8.5.0", "curl"),
        ("Call +1 555 0100 to unlock your account", "Call"),
        ("", "an unknown browser"),
        ("Mozilla/5.0 (compatible)", "an unknown browser"),
    ],
)
def test_s4_browser_family_names_browser_and_system_without_versions(
    user_agent: str, family: str
) -> None:
    assert browser_family(user_agent) == family


def test_s4_device_is_browser_family_and_ip_network_per_user() -> None:
    user = uuid.uuid4()

    def device(ip: str, agent: str = FIREFOX, who: uuid.UUID = user) -> str:
        return device_fingerprint(who, CallContext(caller="gateway", ip=ip, user_agent=agent))

    assert device("203.0.113.9") == device("203.0.113.200", FIREFOX_NEXT)
    assert device("203.0.113.9") != device("203.0.114.9")
    assert device("203.0.113.9") != device("203.0.113.9", CHROME_MAC)
    assert device("2001:db8:1:2::1") == device("2001:db8:1:2:ffff::9")
    assert device("2001:db8:1:2::1") != device("2001:db8:1:3::1")
    assert device("203.0.113.9") != device("203.0.113.9", who=uuid.uuid4())


async def test_s4_first_sign_in_of_an_account_does_not_alert(
    identity: Any, table_rows: TableRows
) -> None:
    """S4: the very first sign-in makes its device known without an alert."""
    stub = identity.stub()
    email = _email()
    user_id = await _sign_up(stub, email)
    await _sign_in(stub, email, HOME)
    assert await _alerts(table_rows, email) == []
    (device,) = await table_rows(tables.known_devices)
    assert (str(device.user_id), device.browser) == (user_id, "Firefox on Linux")


async def test_s4_unknown_device_alert_says_when_where_and_which_browser(
    identity: Any, table_rows: TableRows, db_connection: AsyncConnection
) -> None:
    """S4: a sign-in from a new browser and network queues one alert (platform sender org) with
    the time, city and country from the edge, the IP, the browser family and the link to review
    sessions; it is audited."""
    stub = identity.stub()
    email = _email()
    user_id = await _sign_up(stub, email)
    await _sign_in(stub, email, HOME)
    audit = AuditEvents(db_connection, "identity")
    await audit.mark()

    away = call_metadata(
        client_ip="198.51.100.77", user_agent=CHROME_MAC, city="Zürich", country="CH"
    )
    before = dt.datetime.now(dt.UTC)
    await _sign_in(stub, email, away)

    (alert,) = await _alerts(table_rows, email)
    assert alert.org_id == uuid.UUID(int=0)
    body = alert.body_text
    assert "Where: Zürich, CH (IP address 198.51.100.77)" in body
    assert "Browser: Chrome on macOS" in body
    assert f"When: {before:%Y-%m-%d} " in body
    assert "http://localhost:8080/account/sessions" in body
    events = await audit.new()
    assert sorted(e.action for e in events) == [
        "identity.user.newDeviceAlert",
        "identity.user.signIn",
    ]
    (alerted,) = [e for e in events if e.action == "identity.user.newDeviceAlert"]
    assert alerted.resource_id == user_id


async def test_s4_alert_without_geo_says_the_location_is_unknown(
    identity: Any, table_rows: TableRows
) -> None:
    """S4: without city and country from a trusted proxy the alert names no place."""
    stub = identity.stub()
    email = _email()
    await _sign_up(stub, email)
    await _sign_in(stub, email, HOME)
    await _sign_in(stub, email, call_metadata(client_ip="198.51.100.77", user_agent=CHROME_MAC))
    (alert,) = await _alerts(table_rows, email)
    assert "Where: an unknown location (IP address 198.51.100.77)" in alert.body_text


async def test_s4_known_device_does_not_alert(identity: Any, table_rows: TableRows) -> None:
    """S4: the same browser family from the same /24, even after a browser update, is known."""
    stub = identity.stub()
    email = _email()
    await _sign_up(stub, email)
    await _sign_in(stub, email, HOME)
    await _sign_in(stub, email, HOME)
    await _sign_in(stub, email, call_metadata(client_ip="203.0.113.77", user_agent=FIREFOX_NEXT))
    assert await _alerts(table_rows, email) == []
    assert len(await table_rows(tables.known_devices)) == 1


async def test_s4_failed_attempts_neither_alert_nor_make_a_device_known(
    identity: Any, table_rows: TableRows
) -> None:
    """S4: a wrong password from a new device sends nothing; the first successful sign-in from
    it afterwards alerts."""
    stub = identity.stub()
    email = _email()
    await _sign_up(stub, email)
    await _sign_in(stub, email, HOME)
    away = call_metadata(client_ip="198.51.100.77", user_agent=CHROME_MAC)
    with pytest.raises(grpc.aio.AioRpcError):
        await _sign_in(stub, email, away, password="wrong password!")
    assert await _alerts(table_rows, email) == []
    await _sign_in(stub, email, away)
    assert len(await _alerts(table_rows, email)) == 1
