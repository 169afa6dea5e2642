"""Rate limits shared by gateway replicas through PostgreSQL (P2)."""

from __future__ import annotations

import uuid

import httpx

from helios.devstack.stack import Stack

PASSWORD = "correct horse battery"


def test_p2_principal_rate_limit_holds_across_two_gateway_processes(stack: Stack) -> None:
    """P2: two extra gateway replicas with a limit of 6 requests a minute per principal share one
    counter: 3 requests through each pass, the 7th (through either) gets 429 with Retry-After."""
    limits = {
        "HELIOS_RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE": "6",
        "HELIOS_RATE_LIMIT_PER_IP_PER_MINUTE": "100000",
    }
    urls = [stack.start_gateway(f"gateway-limit-{i}", limits) for i in (1, 2)]
    email = f"limit-{uuid.uuid4().hex[:10]}@example.com"
    with (
        httpx.Client(base_url=urls[0], timeout=15) as first,
        httpx.Client(base_url=urls[1], timeout=15) as second,
    ):
        assert first.post("/api/auth/sign-up", json={"email": email, "password": PASSWORD})
        signed_in = first.post("/api/auth/sign-in", json={"email": email, "password": PASSWORD})
        token = signed_in.cookies["helios_session"]
        cookie = {"cookie": f"helios_session={token}"}
        statuses = []
        for _ in range(3):
            statuses.append(first.get("/api/auth/session", headers=cookie).status_code)
            statuses.append(second.get("/api/auth/session", headers=cookie).status_code)
        assert statuses == [200] * 6
        refused = second.get("/api/auth/session", headers=cookie)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
        assert first.get("/api/auth/session", headers=cookie).status_code == 429
        # Another principal is not affected by this one's limit.
        other = f"limit-{uuid.uuid4().hex[:10]}@example.com"
        assert second.post("/api/auth/sign-up", json={"email": other, "password": PASSWORD})
        assert (
            second.post(
                "/api/auth/sign-in", json={"email": other, "password": PASSWORD}
            ).status_code
            == 200
        )
