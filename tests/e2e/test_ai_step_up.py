"""Step-up before an AI's dangerous action (I3) end to end through the gateway: an org whose AI
policy asks for it runs a parked offer only when its owner confirms with a token from identity's
StepUp (a fresh TOTP code) made for that very invocation."""

from __future__ import annotations

import time
import uuid

import psycopg
import pyotp
import pytest

from helios.devstack.stack import Stack

from .conftest import Browser, sign_up, wait_for
from .test_ai_invocations import INVOKE, LIST, OFFER, _delegate

pytestmark = pytest.mark.e2e


def _new_org_owner(stack: Stack) -> tuple[Browser, str, str]:
    """A new account made the owner of a new org by the platform root, then signed in there:
    (its browser, user id, org id)."""
    email = sign_up(stack, "step-up")
    owner_id = Browser(stack).sign_in(email)["user"]["user_id"]
    root = Browser(stack)
    root.sign_in(stack.root_credentials["email"], stack.root_credentials["password"])
    created = root.post(
        "/api/v1/identity/orgs",
        json={
            "slug": f"step-up-{uuid.uuid4().hex[:10]}",
            "name": "Step-up",
            "owner_user_id": owner_id,
        },
    )
    assert created.status_code == 200, created.text
    org_id = created.json()["org"]["org_id"]
    owner = Browser(stack)
    assert owner.sign_in(email)["session"]["org_id"] == org_id
    wait_for(lambda: owner.get("/api/v1/authz/roles").status_code == 200, what="the org's roles")
    return owner, owner_id, org_id


def _enrol_totp(owner: Browser) -> pyotp.TOTP:
    enrolled = owner.post("/api/v1/identity/mfa/totp:enroll", json={})
    assert enrolled.status_code == 200, enrolled.text
    secret = enrolled.json()["otpauth_uri"].split("secret=")[1].split("&")[0]
    totp = pyotp.TOTP(secret)
    confirmed = owner.post("/api/v1/identity/mfa/totp:confirm", json={"code": totp.now()})
    assert confirmed.status_code == 200, confirmed.text
    return totp


def offers_sent(db: psycopg.Connection, invocation_id: str) -> int:
    """1 once the invocation ran (SUCCEEDED), else 0."""
    row = db.execute(
        "SELECT state FROM ai_broker.invocations WHERE id = %s", (invocation_id,)
    ).fetchone()
    assert row is not None
    return 1 if row[0] == "succeeded" else 0


def test_i3_with_the_org_asking_a_dangerous_offer_runs_only_after_a_step_up(
    stack: Stack, db: psycopg.Connection
) -> None:
    """I3: the owner switches the org's AI policy on; the AI's offer is parked and says a
    step-up is needed; confirming without one is refused (nothing sent); the AI token cannot
    step up; a wrong code is refused; the owner steps up with a fresh TOTP
    code for this invocation and the confirmation runs it. Both steps are audited with the
    token's id."""
    owner, owner_id, org_id = _new_org_owner(stack)
    totp = _enrol_totp(owner)
    policy = owner.request(
        "PUT",
        f"/api/v1/ai/orgs/{org_id}/policy",
        json={"policy": {"require_step_up_to_confirm": True}, "expected_version": 0},
    )
    assert policy.status_code == 200, policy.text
    assert policy.json()["policy"]["version"] == "1"
    _, _, agent = _delegate(stack, owner)

    listing = agent.post(INVOKE, json={"action": LIST, "input": {}})
    assert listing.status_code == 200, listing.text
    candidates = listing.json()["output"]["candidates"]
    candidate = next(c["candidate_id"] for c in candidates if c.get("owner_id") == owner_id)
    offer = {"candidate_id": candidate, "salary": 65000, "currency": "EUR"}
    parked = agent.post(INVOKE, json={"action": OFFER, "input": offer}).json()
    invocation_id = parked["invocation_id"]
    shown = owner.get(f"/api/v1/ai/invocations/{invocation_id}").json()["invocation"]
    assert shown["step_up_required"] is True
    confirm = f"/api/v1/ai/invocations/{invocation_id}:confirm"
    decision = {
        "confirmation_id": parked["confirmation_required"]["confirmation_id"],
        "input_hash": parked["input_hash"],
    }
    without = owner.post(confirm, json=decision)
    assert without.status_code == 400, without.text
    assert without.json()["error"]["code"] == "FAILED_PRECONDITION"
    assert "step-up" in without.json()["error"]["message"]
    assert offers_sent(db, invocation_id) == 0

    step_up = "/api/v1/identity/mfa:stepUp"
    code = totp.at(time.time() + 30)
    by_ai = agent.post(step_up, json={"code": code, "purpose": "ai.invocation.confirm"})
    assert by_ai.status_code == 403, by_ai.text
    wrong_code = owner.post(
        step_up,
        json={
            "code": f"{(int(code) + 1) % 1_000_000:06d}",
            "purpose": "ai.invocation.confirm",
            "binding": invocation_id,
        },
    )
    assert wrong_code.status_code == 400, wrong_code.text
    assert offers_sent(db, invocation_id) == 0

    stepped = owner.post(
        step_up,
        json={
            "code": code,
            "purpose": "ai.invocation.confirm",
            "binding": invocation_id,
        },
    )
    assert stepped.status_code == 200, stepped.text
    token = stepped.json()["step_up_token"]
    assert token.startswith("hsu_")
    done = owner.post(confirm, json={**decision, "step_up_token": token})
    assert done.status_code == 200, done.text
    assert done.json()["invocation"]["state"] == "INVOCATION_STATE_SUCCEEDED"
    assert done.json()["invocation"]["output"]["offer"]["salary"] == "65000"

    def audited() -> tuple[str, str] | None:
        stepped_up = db.execute(
            "SELECT diff->>'token_id' FROM audit.audit_log WHERE action = 'identity.mfa.stepUp'"
            " AND actor_id = %s AND diff->>'binding' = %s AND outcome = 1",
            (owner_id, invocation_id),
        ).fetchone()
        confirmed = db.execute(
            "SELECT diff->>'step_up_token_id' FROM audit.audit_log"
            " WHERE action = 'ai.invocation.confirm' AND resource_id = %s AND outcome = 1",
            (invocation_id,),
        ).fetchone()
        return (stepped_up[0], confirmed[0]) if stepped_up and confirmed else None

    issued, used = wait_for(audited, what="the step-up and confirmation audit rows")
    assert issued == used
    assert len(issued) == 32
