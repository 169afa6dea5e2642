"""The whole stack, started the way `make up` starts it, shared by the end-to-end journeys, and
the browser and demo-org helpers they share."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from helios.devstack.stack import Stack, StackOptions
from helios.kernel.testing.trace_collector import TraceCollector

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def trace_collector() -> Iterator[TraceCollector]:
    """The OTLP receiver every process of the shared stack exports its spans to (P5); it
    outlives the stack, so the processes' last spans find it when they stop."""
    collector = TraceCollector().start()
    try:
        yield collector
    finally:
        collector.stop()


@pytest.fixture(scope="session")
def stack(server_url: str, trace_collector: TraceCollector) -> Iterator[Stack]:
    """Six processes over a fresh database and a NATS of our own (so tests may stop it),
    exporting their spans to `trace_collector`."""
    name = f"helios_e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = f"{server_url.rsplit('/', 1)[0]}/{name}"
    running = Stack(
        StackOptions(
            database_url=database_url,
            http_port=0,
            cheap_argon2=True,
            log_level="DEBUG",
            product_example=True,
            otlp_endpoint=trace_collector.endpoint,
        )
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(stack: Stack) -> Iterator[psycopg.Connection]:
    """A superuser connection to the stack's database, for looking at what was written."""
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        yield conn


_OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_browsers() -> Iterator[None]:
    """Close every Browser a test opened."""
    yield
    while _OPEN:
        _OPEN.pop().close()


class Browser:
    """A browser on the gateway. It keeps cookies by name and path itself (they are Secure and
    the local gateway speaks plain HTTP) and sends our Origin and the CSRF token."""

    def __init__(self, stack: Stack) -> None:
        self.http = httpx.Client(
            base_url=stack.gateway_url, timeout=15, headers={"origin": stack.gateway_url}
        )
        _OPEN.append(self.http)
        self.cookies: dict[str, tuple[str, str]] = {}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        sent = {n: v for n, (v, p) in self.cookies.items() if path.startswith(p)}
        headers = {"cookie": "; ".join(f"{n}={v}" for n, v in sent.items())} if sent else {}
        if "helios_csrf" in sent:
            headers["x-csrf-token"] = sent["helios_csrf"]
        response = self.http.request(method, path, headers=headers, **kwargs)
        for header in response.headers.get_list("set-cookie"):
            first, *attributes = [part.strip() for part in header.split(";")]
            name, _, value = first.partition("=")
            named = {k.lower(): v for k, _, v in (a.partition("=") for a in attributes)}
            if named.get("max-age") == "0" or value in ("", '""'):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = (value, named.get("path", "/"))
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def sign_in(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        """Sign in; returns the reply (user, session)."""
        reply = self.post("/api/auth/sign-in", json={"email": email, "password": password})
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """The first truthy value of `check()`, polled every 0.1 s; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def sign_up(stack: Stack, prefix: str = "e2e") -> str:
    """A new account (its e-mail), signed up through the gateway with PASSWORD."""
    email = f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"
    reply = Browser(stack).post("/api/auth/sign-up", json={"email": email, "password": PASSWORD})
    assert reply.status_code == 201, reply.text
    return email


def demo_owner(stack: Stack) -> tuple[Browser, str, str]:
    """The demo org's owner signed in, their user id and the org id (once authz seeded it)."""
    owner = Browser(stack)
    creds = stack.demo_credentials
    reply = owner.sign_in(creds["email"], creds["password"])
    wait_for(
        lambda: owner.get("/api/v1/authz/roles").status_code == 200, what="the demo org's roles"
    )
    return owner, reply["user"]["user_id"], reply["session"]["org_id"]


def employee_type(owner: Browser) -> str:
    """A new user type of the org whose default role is the Employee blueprint."""
    roles = owner.get("/api/v1/authz/roles", params={"page_size": 100}).json()["roles"]
    role = next(r["role_id"] for r in roles if r["blueprint"] == "ROLE_BLUEPRINT_EMPLOYEE")
    name = f"e2e-employee-{uuid.uuid4().hex[:8]}"
    created = owner.post("/api/v1/authz/user-types", json={"name": name, "default_role_id": role})
    assert created.status_code == 200, created.text
    return name


def demo_member(stack: Stack, owner: Browser, org_id: str) -> tuple[str, str]:
    """A new Employee of the org: (user id, e-mail)."""
    email = sign_up(stack)
    added = owner.post(
        f"/api/v1/identity/orgs/{org_id}/members",
        json={"email": email, "user_type": employee_type(owner)},
    )
    assert added.status_code == 200, added.text
    return added.json()["member"]["user"]["user_id"], email
