"""AI invocations end to end through the gateway (I2, I3, I4, I5): the demo org's owner delegates
to an AI, which calls the example product service `recruitment` only through registered actions;
a dangerous offer waits for the owner's confirmation and runs once, with exactly its input; every
call lands in the audit log as the AI with hashes that recompute."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import psycopg
import pytest

from helios.devstack.stack import Stack

from .conftest import Browser, demo_owner, wait_for

pytestmark = pytest.mark.e2e

LIST, OFFER = "recruitment.candidate.list", "recruitment.offer.send"
INVOKE = "/api/v1/ai/invoke"


def _canonical_hash(value: Any) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces, whole numbers as integers), as any
    client can compute it."""

    def plain(item: Any) -> Any:
        if isinstance(item, dict):
            return {key: plain(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [plain(inner) for inner in item]
        if isinstance(item, float) and item.is_integer():
            return int(item)
        return item

    text = json.dumps(plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _agent(stack: Stack, token: str) -> httpx.Client:
    """A client without cookies that sends the AI token as `Authorization: Bearer`."""
    client = Browser(stack).http
    client.headers["authorization"] = f"Bearer {token}"
    return client


def _delegate(stack: Stack, owner: Browser) -> tuple[str, str, httpx.Client]:
    """(AI session id, token, the agent's client) once the example service has registered its
    permissions with authz and its actions with the broker (both at its start)."""
    wait_for(
        lambda: (
            {OFFER, LIST}
            <= {a["definition"]["name"] for a in owner.get("/api/v1/ai/actions").json()["actions"]}
        ),
        what="the example service's actions in the registry",
    )
    wait_for(
        lambda: (
            {OFFER, LIST}
            <= {
                p["key"]
                for p in owner.get("/api/v1/authz/permissions", params={"service": "recruitment"})
                .json()
                .get("permissions", [])
            }
        ),
        what="the example service's permissions in authz",
    )
    created = owner.post("/api/v1/ai/sessions", json={"purpose": "e2e invocations"})
    assert created.status_code == 200, created.text
    token = created.json()["token"]
    return created.json()["session"]["ai_session_id"], token, _agent(stack, token)


def _audit_rows(db: psycopg.Connection, invocation_id: str) -> dict[str, tuple[Any, ...]]:
    rows = db.execute(
        "SELECT action, actor_type, actor_id, session_id, ip, diff, decision_id, outcome"
        " FROM audit.audit_log WHERE resource_id = %s",
        (invocation_id,),
    ).fetchall()
    return {row[0]: row for row in rows}


def test_i3_i4_a_dangerous_offer_runs_once_after_the_human_confirms_and_is_audited(
    stack: Stack, db: psycopg.Connection
) -> None:
    """I2: the AI lists candidates through the broker. I3: its offer is parked with the
    server's summary; the AI token cannot confirm it; a changed input hash is refused; the owner
    confirms in their session and exactly that offer is sent; confirming again is refused.
    I4: the audit log holds the invoke and completion as actor_type ai (the owner, the AI
    session, an IP) with decision id, input and output hashes that recompute from GetInvocation;
    the confirmation is the owner's."""
    owner, owner_id, org_id = demo_owner(stack)
    session_id, _, agent = _delegate(stack, owner)

    listing = agent.post(INVOKE, json={"action": LIST, "input": {}})
    assert listing.status_code == 200, listing.text
    candidates = listing.json()["output"]["candidates"]
    candidate = next(c["candidate_id"] for c in candidates if c.get("owner_id") == owner_id)
    offer = {"candidate_id": candidate, "salary": 70000, "currency": "EUR"}
    parked = agent.post(INVOKE, json={"action": OFFER, "input": offer})
    assert parked.status_code == 200, parked.text
    body = parked.json()
    invocation_id = body["invocation_id"]
    required = body["confirmation_required"]
    assert required["summary"] == f'Send an offer of 70000 "EUR" to candidate "{candidate}"'
    assert body["input_hash"] == _canonical_hash(offer)
    assert "output" not in body

    confirm = f"/api/v1/ai/invocations/{invocation_id}:confirm"
    decision = {"confirmation_id": required["confirmation_id"], "input_hash": body["input_hash"]}
    as_ai = agent.post(confirm, json=decision)
    assert as_ai.status_code == 403, as_ai.text
    changed = owner.post(confirm, json={**decision, "input_hash": _canonical_hash({})})
    assert changed.status_code == 400, changed.text
    pending = owner.get(f"/api/v1/ai/invocations/{invocation_id}").json()["invocation"]
    assert pending["state"] == "INVOCATION_STATE_PENDING_CONFIRMATION"

    confirmed = owner.post(confirm, json=decision)
    assert confirmed.status_code == 200, confirmed.text
    done = confirmed.json()["invocation"]
    assert done["state"] == "INVOCATION_STATE_SUCCEEDED"
    assert (done["decided_by"], done["org_id"]) == (owner_id, org_id)
    sent = done["output"]["offer"]
    assert (sent["candidate_id"], sent["salary"], sent["currency"]) == (candidate, "70000", "EUR")
    assert sent["sent_by"] == owner_id
    again = owner.post(confirm, json=decision)
    assert again.status_code == 400, again.text
    assert again.json()["error"]["code"] == "FAILED_PRECONDITION"

    shown = agent.get(f"/api/v1/ai/invocations/{invocation_id}").json()["invocation"]
    assert _canonical_hash(shown["input"]) == shown["input_hash"] == body["input_hash"]
    assert _canonical_hash(shown["output"]) == shown["output_hash"] == done["output_hash"]
    row = db.execute(
        "SELECT input_json, output_json FROM ai_broker.invocations WHERE id = %s",
        (invocation_id,),
    ).fetchone()
    assert row is not None
    assert hashlib.sha256(row[0].encode()).hexdigest() == shown["input_hash"]
    assert hashlib.sha256(row[1].encode()).hexdigest() == shown["output_hash"]

    rows = wait_for(
        lambda: (
            found
            if {"ai.action.invoke", "ai.invocation.confirm", "ai.invocation.complete"}
            <= set(found := _audit_rows(db, invocation_id))
            else None
        ),
        what="the invocation's audit rows",
    )
    for action in ("ai.action.invoke", "ai.invocation.complete"):
        _, actor_type, actor_id, session, ip, diff, decision_id, _ = rows[action]
        assert (actor_type, actor_id, session) == ("ai", owner_id, session_id)
        assert ip
        assert decision_id == body["decision_id"]
        assert diff["input_hash"] == body["input_hash"]
        assert diff["decision_id"] == body["decision_id"]
        assert diff["action"] == OFFER
        assert "system_prompt_hash" in diff
    assert rows["ai.invocation.complete"][5]["output_hash"] == done["output_hash"]
    assert rows["ai.invocation.confirm"][1:3] == ("user", owner_id)


def test_i5_the_ai_reaches_only_registered_actions_and_a_revoked_token_nothing(
    stack: Stack, db: psycopg.Connection
) -> None:
    """I5: a name outside the registry (creating an API key, impersonating, granting a role, a
    raw service method) is 404 and audited as the AI. I4: ReplayCheck by the owner re-runs the
    listing and the hashes match. I1: once revoked, the token invokes nothing (401)."""
    owner, _, _ = demo_owner(stack)
    session_id, _, agent = _delegate(stack, owner)
    for name in (
        "identity.apiKey.create",
        "iam.user.impersonate",
        "authz.roleAssignment.create",
        "/helios.proto.recruitment.v1.RecruitmentService/SendOffer",
    ):
        refused = agent.post(INVOKE, json={"action": name, "input": {}})
        assert refused.status_code == 404, (name, refused.text)
    wait_for(
        lambda: (
            db.execute(
                "SELECT count(*) FROM audit.audit_log WHERE action = 'ai.action.invoke'"
                " AND session_id = %s AND actor_type = 'ai' AND diff->>'error_code' = 'NOT_FOUND'",
                (session_id,),
            ).fetchone()
            == (4,)
        ),
        what="the refusals in the audit log",
    )

    listing = agent.post(INVOKE, json={"action": LIST, "input": {}})
    assert listing.status_code == 200, listing.text
    invocation_id = listing.json()["invocation_id"]
    replay = owner.post(f"/api/v1/ai/invocations/{invocation_id}:replayCheck", json={})
    assert replay.status_code == 200, replay.text
    assert replay.json()["matches"] is True
    assert replay.json()["recorded_output_hash"] == listing.json()["output_hash"]

    revoked = owner.post(f"/api/v1/ai/sessions/{session_id}:revoke", json={})
    assert revoked.status_code == 200, revoked.text
    after = agent.post(INVOKE, json={"action": LIST, "input": {}})
    assert after.status_code == 401, after.text
