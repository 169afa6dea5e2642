"""Sign-in the way an attacker tries it, through the gateway (A1): account enumeration by answer
and by timing, brute force across two identity replicas, and the e-mailed verification link."""

from __future__ import annotations

import re
import statistics
import time
import uuid

import httpx
import pytest

from helios.devstack.stack import Stack

PASSWORD = "correct horse battery"
WRONG = "wrong horse battery"
# A gateway that believes X-Forwarded-For from the test (127.0.0.1), so that each test signs in
# from its own documentation address and no lockout of one test's IP touches another test.
TRUSTING = {"HELIOS_TRUSTED_PROXIES": '["127.0.0.1/32"]'}


def _email() -> str:
    return f"attack-{uuid.uuid4().hex[:10]}@example.com"


def _ip() -> str:
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}"


@pytest.fixture(scope="module")
def gateways(stack: Stack) -> tuple[str, str]:
    """Two gateways trusting the test as a proxy: the first calls the stack's identity, the
    second a second identity replica over the same database."""
    replica_port = stack.start_identity_replica("identity-replica")
    first = stack.start_gateway("gateway-attacks-1", TRUSTING)
    second = stack.start_gateway(
        "gateway-attacks-2", {**TRUSTING, "HELIOS_IDENTITY_TARGET": f"localhost:{replica_port}"}
    )
    return first, second


def _sign_in(client: httpx.Client, email: str, password: str, ip: str) -> httpx.Response:
    return client.post(
        "/api/auth/sign-in",
        json={"email": email, "password": password},
        headers={"x-forwarded-for": ip},
    )


def test_a1_known_and_unknown_email_answer_alike(stack: Stack, gateways: tuple[str, str]) -> None:
    """A1: a wrong password for a known e-mail and any password for an unknown one get the same
    status and the same body, and their median times are within 20% of each other (the unknown
    one costs a dummy argon2 verification)."""
    known = [_email() for _ in range(4)]
    with httpx.Client(base_url=gateways[0], timeout=15) as client:
        for email in known:
            assert client.post(
                "/api/auth/sign-up", json={"email": email, "password": PASSWORD}
            ).is_success
        timings: dict[str, list[float]] = {"known": [], "unknown": []}
        answers: dict[str, set[tuple[int, str]]] = {"known": set(), "unknown": set()}
        for round_ in range(32):  # interleaved, 8 attempts per known account (limit 10)
            for kind in ("known", "unknown"):
                email = known[round_ % 4] if kind == "known" else _email()
                started = time.perf_counter()
                reply = _sign_in(client, email, WRONG, _ip())
                timings[kind].append(time.perf_counter() - started)
                answers[kind].add((reply.status_code, reply.text))
    assert answers["known"] == answers["unknown"]
    assert len(answers["known"]) == 1
    (status, body), *_ = answers["known"]
    assert status == 401
    assert "invalid e-mail or password" in body
    known_median = statistics.median(timings["known"])
    unknown_median = statistics.median(timings["unknown"])
    assert abs(known_median - unknown_median) <= 0.2 * max(known_median, unknown_median), (
        known_median,
        unknown_median,
    )


def test_a1_eleventh_wrong_password_across_two_replicas_gets_429_with_retry_after(
    stack: Stack, gateways: tuple[str, str]
) -> None:
    """A1: ten wrong passwords alternating between two identity replicas (through two gateways)
    count together: the eleventh attempt, even with the right password, gets 429 with a
    Retry-After in seconds, through either replica."""
    email, ip = _email(), _ip()
    with (
        httpx.Client(base_url=gateways[0], timeout=15) as first,
        httpx.Client(base_url=gateways[1], timeout=15) as second,
    ):
        assert first.post("/api/auth/sign-up", json={"email": email, "password": PASSWORD})
        statuses = [
            _sign_in(first if attempt % 2 == 0 else second, email, WRONG, ip).status_code
            for attempt in range(10)
        ]
        assert statuses == [401] * 10
        for client in (second, first):
            refused = _sign_in(client, email, PASSWORD, ip)
            assert refused.status_code == 429
            assert 1 <= int(refused.headers["retry-after"]) <= 900
            assert refused.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
            assert "session" not in refused.json()
            assert "helios_session" not in refused.cookies


def test_a1_sign_up_mail_arrives_dkim_signed_and_its_link_verifies(stack: Stack) -> None:
    """A1, E3: signing up sends a DKIM-signed verification mail through the SMTP relay; the
    link's token verifies the address once, and a second use is refused."""
    email = _email()
    with httpx.Client(base_url=stack.gateway_url, timeout=15) as client:
        assert client.post(
            "/api/auth/sign-up", json={"email": email, "password": PASSWORD}
        ).is_success
        mail = stack.wait_for_mail(email, "Verify your Helios e-mail address")
        assert mail["DKIM-Signature"] is not None
        body = mail.get_body(preferencelist=("plain",))
        assert body is not None
        found = re.search(r"/verify-email\?token=([A-Za-z0-9_\-]+)", body.get_content())
        assert found is not None
        token = found.group(1)
        verified = client.post("/api/v1/identity/email:verify", json={"token": token})
        assert verified.status_code == 200
        assert verified.json()["user"]["email_verified"] is True
        again = client.post("/api/v1/identity/email:verify", json={"token": token})
        assert again.status_code == 400
