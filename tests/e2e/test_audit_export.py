"""An org admin exports the org's audit log through the gateway (NDJSON, chunks in base64) and
the bundle verifies offline against keyvault's keys; another org's user is refused (L2)."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

from helios.audit.store.keyvault_signer import KeyvaultSigner
from helios.devstack.stack import Stack

UA = "helios-e2e-audit-export/1.0"
PASSWORD = "correct horse battery"


@contextmanager
def _session(stack: Stack, email: str, password: str) -> Iterator[httpx.Client]:
    """A client signed in as `email`. Cookies are sent explicitly: they are Secure and the
    local gateway speaks plain HTTP."""
    with httpx.Client(base_url=stack.gateway_url, headers={"user-agent": UA}, timeout=30) as client:
        signed_in = client.post("/api/auth/sign-in", json={"email": email, "password": password})
        assert signed_in.status_code == 200, signed_in.text
        jar = {c.name: c.value for c in signed_in.cookies.jar}
        client.cookies.clear()
        client.headers["cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items() if v)
        client.headers["x-csrf-token"] = jar["helios_csrf"]
        client.headers["origin"] = stack.gateway_url
        yield client


def _demo_org(db: psycopg.Connection) -> str:
    row = db.execute("SELECT id::text FROM identity.orgs WHERE slug = 'demo'").fetchone()
    assert row is not None
    return str(row[0])


def _wait_for_rows(db: psycopg.Connection, org_id: str, timeout: float = 30.0) -> int:
    """The org's audit rows once its sign-in reached audit (relay, JetStream, consumer)."""
    deadline = time.monotonic() + timeout
    while True:
        query = "SELECT count(*) FROM audit.audit_log WHERE org_id = %s AND action = %s"
        row = db.execute(query, (org_id, "identity.user.signIn")).fetchone()
        if row and row[0]:
            total = db.execute(
                "SELECT count(*) FROM audit.audit_log WHERE org_id = %s", (org_id,)
            ).fetchone()
            return int(total[0]) if total else 0
        if time.monotonic() > deadline:
            raise AssertionError(f"no audited sign-in of org {org_id} after {timeout} s")
        time.sleep(0.2)


def _checkpoint_jwks(stack: Stack) -> list[dict[str, str]]:
    """Keyvault's public keys of the checkpoint key, asked of keyvault as audit would."""

    async def fetch() -> list[dict[str, str]]:
        signer = KeyvaultSigner(f"localhost:{stack.ports['keyvault']}", stack.certs("audit"))
        try:
            return await signer.public_keys()
        finally:
            await signer.close()

    return asyncio.run(fetch())


def _export(admin: httpx.Client, db: psycopg.Connection, org_id: str) -> tuple[bytes, int]:
    """Seal the org's log and export all of it through the gateway: (the bundle, its size)."""
    stored = _wait_for_rows(db, org_id)

    sealed = admin.post(f"/api/v1/audit/orgs/{org_id}/checkpoints", json={})
    assert sealed.status_code == 200, sealed.text
    size = int(sealed.json()["checkpoint"]["tree_size"])
    assert size >= stored

    response = admin.post(f"/api/v1/audit/orgs/{org_id}/exports", json={})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    messages = [json.loads(line) for line in response.text.splitlines()]
    assert messages
    assert all("error" not in m for m in messages), messages
    assert int(messages[-1]["events_done"]) == int(messages[-1]["events_total"]) == size
    assert messages[-1]["cursor"] == ""
    return b"".join(base64.b64decode(m["chunk"]) for m in messages), size


def test_l2_org_admin_exports_through_the_gateway_and_the_bundle_verifies_offline(
    stack: Stack, db: psycopg.Connection, tmp_path: Path
) -> None:
    """L2: the demo admin (a user of the demo org, the caller the checkpoint rule allows) seals
    and exports the org's log: the gateway streams NDJSON, one line per message with the gzip
    member in base64 and progress; the members concatenated verify with `verify --bundle`
    against keyvault's keys. A signed-in user of no org gets 403 before any stream starts."""
    creds, org_id = stack.demo_credentials, _demo_org(db)
    with _session(stack, creds["email"], creds["password"]) as admin:
        bundle, size = _export(admin, db, org_id)
    path = tmp_path / "demo.jsonl.gz"
    path.write_bytes(bundle)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": _checkpoint_jwks(stack)}))
    command = ["verify", "--bundle", str(path), "--jwks", str(jwks)]
    verified = subprocess.run(
        [sys.executable, "-m", "helios.audit", *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"org {org_id}: OK ({size} leaves" in verified.stdout

    email = f"export-{uuid.uuid4().hex[:10]}@example.com"
    signed_up = httpx.post(
        f"{stack.gateway_url}/api/auth/sign-up",
        json={"email": email, "password": PASSWORD},
        headers={"user-agent": UA},
        timeout=30,
    )
    assert signed_up.status_code == 201, signed_up.text
    with _session(stack, email, PASSWORD) as stranger:
        refused = stranger.post(f"/api/v1/audit/orgs/{org_id}/exports", json={})
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "PERMISSION_DENIED"
