"""The deployment's provider configuration through the gateway (C1): only the platform root reads
or writes it; the secret is sealed at rest and never returned; stale and invalid updates are
refused; every update is audited; a second identity replica uses a change without a restart."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from helios.devstack.stack import Stack

T = TypeVar("T")
PASSWORD = "correct horse battery"
SECRET = "c1-e2e-oidc-secret-5b9e07"
LINK_MAIL = "Your Helios sign-in link"
CONFIG = "/api/v1/identity/auth-config"


class Session:
    """A signed-in browser on one gateway: sends its session and CSRF cookies itself (they are
    Secure and the local gateway speaks plain HTTP), the CSRF header and our Origin."""

    def __init__(self, url: str, email: str, password: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=15, headers={"origin": url})
        reply = self.http.post("/api/auth/sign-in", json={"email": email, "password": password})
        assert reply.status_code == 200, reply.text
        jar = {cookie.name: cookie.value for cookie in reply.cookies.jar}
        self.http.headers["cookie"] = (
            f"helios_session={jar['helios_session']}; helios_csrf={jar['helios_csrf']}"
        )
        self.http.headers["x-csrf-token"] = jar["helios_csrf"]

    def get_config(self) -> httpx.Response:
        return self.http.get(CONFIG)

    def put_config(self, config: dict[str, Any]) -> httpx.Response:
        return self.http.put(CONFIG, json={"config": config})

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="module")
def replica_gateway(stack: Stack) -> str:
    """A gateway in front of a second identity process over the same database and NATS."""
    port = stack.start_identity_replica("identity-c1-replica")
    return stack.start_gateway("gateway-c1", {"HELIOS_IDENTITY_TARGET": f"localhost:{port}"})


@pytest.fixture
def root(stack: Stack) -> Iterator[Session]:
    """The platform root (seeded by the stack: identity's account, authz's `seed-root`)."""
    session = Session(
        stack.gateway_url, stack.root_credentials["email"], stack.root_credentials["password"]
    )
    yield session
    session.close()


def _wait_for(probe: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll `probe` until it returns something (an event happened) or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _config(session: Session) -> dict[str, Any]:
    reply = session.get_config()
    assert reply.status_code == 200, reply.text
    config: dict[str, Any] = reply.json()["config"]
    return config


def _version(config: dict[str, Any]) -> int:
    return int(config.get("version", 0))


def _sign_up(url: str) -> str:
    email = f"c1-{uuid.uuid4().hex[:10]}@example.com"
    reply = httpx.post(
        f"{url}/api/auth/sign-up", json={"email": email, "password": PASSWORD}, timeout=15
    )
    assert reply.status_code == 201, reply.text
    return email


def _link_issued(db: psycopg.Connection, url: str, email: str) -> bool:
    """Ask for a magic link through the gateway at `url`; True when one was issued (the answer
    is the same either way: the issued token is the observable)."""
    reply = httpx.post(
        f"{url}/api/v1/identity/magic-link:request", json={"email": email}, timeout=15
    )
    assert reply.status_code == 200, reply.text
    row = db.execute(
        "SELECT count(*) FROM identity.email_tokens t JOIN identity.users u ON u.id = t.user_id "
        "WHERE lower(u.email) = lower(%s) AND t.purpose = 'magic_link'",
        (email,),
    ).fetchone()
    assert row is not None
    return int(row[0]) > 0


def _audit_rows(db: psycopg.Connection, actor_id: str) -> list[dict[str, Any]]:
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(
            "SELECT * FROM audit.audit_log WHERE actor_id = %s AND action = %s ORDER BY seq",
            (actor_id, "identity.authConfig.update"),
        )
        return list(cur.fetchall())


def _restore(
    root: Session, before: dict[str, Any], db: psycopg.Connection, urls: list[str]
) -> None:
    """Put the switches back and wait until every identity behind `urls` uses them again (a
    magic link for a user without an org is refused), so later journeys see the defaults."""
    reply = root.put_config({**before, "version": _version(_config(root))})
    assert reply.status_code == 200, reply.text
    for url in urls:
        _wait_for(lambda u=url: not _link_issued(db, u, _sign_up(u)), f"{url} to reload")


def test_c1_only_the_platform_root_reads_or_changes_the_config(stack: Stack, root: Session) -> None:
    """C1: the demo org's Owner gets 403 for reading and for writing the configuration through
    the gateway; the platform root reads it."""
    owner = Session(
        stack.gateway_url, stack.demo_credentials["email"], stack.demo_credentials["password"]
    )
    try:
        read = owner.get_config()
        assert read.status_code == 403, read.text
        write = owner.put_config({"mfa_required": True, "version": _version(_config(root))})
        assert write.status_code == 403, write.text
        assert "platform root" in write.json()["error"]["message"]
    finally:
        owner.close()
    assert "remember_device_days" in _config(root)


def test_c1_stale_and_invalid_updates_refused(root: Session) -> None:
    """C1: an update from an old read and out-of-bounds values are refused with clear
    messages; nothing changes."""
    before = _config(root)
    version = _version(before)

    stale = root.put_config({**before, "version": version + 5})
    assert stale.status_code == 400, stale.text
    assert "read it again and reapply your change" in stale.json()["error"]["message"]
    days = root.put_config({**before, "remember_device_days": 400})
    assert days.status_code == 400, days.text
    assert "remember_device_days must be 1..365" in days.json()["error"]["message"]
    issuer = root.put_config(
        {
            **before,
            "oidc_providers": [
                {"provider_id": "okta", "issuer": "http://idp.example.com", "client_id": "x"}
            ],
        }
    )
    assert issuer.status_code == 400, issuer.text
    assert "https:// URL" in issuer.json()["error"]["message"]
    assert _version(_config(root)) == version


def test_c1_change_takes_effect_on_a_running_replica_without_restart(
    stack: Stack, root: Session, replica_gateway: str, db: psycopg.Connection
) -> None:
    """C1: the root enables magic links deployment-wide through one identity; a second,
    already running identity replica starts mailing magic links to a user of no org (refused
    before) without a restart. The OIDC secret sent along is sealed in platform_settings, never
    returned, and the update is in the audit log without it."""
    before = _config(root)
    assert before.get("magic_link_enabled", False) is False
    email = _sign_up(replica_gateway)
    assert not _link_issued(db, replica_gateway, email)
    update = {
        **before,
        "magic_link_enabled": True,
        "remember_device_days": 10,
        "oidc_providers": [
            {
                "provider_id": "okta",
                "issuer": "https://login.example.com/oauth2/default",
                "client_id": "helios-web",
                "client_secret": SECRET,
                "enabled": True,
            }
        ],
        "version": _version(before),
    }
    try:
        reply = root.put_config(update)
        assert reply.status_code == 200, reply.text
        stored = reply.json()["config"]
        assert _version(stored) == _version(before) + 1
        assert SECRET not in reply.text
        assert stored["oidc_providers"][0].get("client_secret", "") == ""

        replica_root = Session(
            replica_gateway, stack.root_credentials["email"], stack.root_credentials["password"]
        )
        try:
            seen = _config(replica_root)
        finally:
            replica_root.close()
        assert seen["magic_link_enabled"] is True
        assert seen["remember_device_days"] == 10
        assert SECRET not in str(seen)

        _wait_for(lambda: _link_issued(db, replica_gateway, email), "the replica to reload")
        mail = stack.wait_for_mail(email, LINK_MAIL)
        assert "/magic-link?token=" in str(mail.get_body(preferencelist=("plain",)))

        row = db.execute(
            "SELECT auth_config::text, version, updated_by FROM identity.platform_settings"
        ).fetchone()
        assert row is not None
        assert SECRET not in row[0]
        assert "client_secret_sealed" in row[0]
        assert (row[1], row[2]) == (_version(stored), stack.root_credentials["user_id"])

        audited = _wait_for(
            lambda: _audit_rows(db, stack.root_credentials["user_id"]), "the audit row"
        )
        assert SECRET not in str(audited)
        latest = audited[-1]
        assert latest["org_id"] == "platform"
        assert latest["diff"]["magic_link_enabled"] == {"from": False, "to": True}
        assert latest["diff"]["oidc_providers"]["client_secret_set"] == ["okta"]
    finally:
        _restore(root, before, db, [stack.gateway_url, replica_gateway])
