"""The action registry end to end (I5, D1, D2): the example product service `recruitment`
registers its actions with the broker when it starts, and the demo org's people list them
through the gateway with the org's dangerous flags."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from helios.devstack.stack import Stack
from helios.kernel.clients import secure_channel
from helios.proto.ai_broker.v1 import ai_broker_pb2, ai_broker_pb2_grpc
from helios.recruitment_example.catalog import RECRUITMENT_ACTIONS

from .conftest import Browser, demo_member, demo_owner, wait_for

LIST, OFFER = (a.name for a in RECRUITMENT_ACTIONS)


def _actions(browser: Browser) -> dict[str, dict[str, Any]] | None:
    """The registered actions the caller sees (name -> action), once the example's are in."""
    reply = browser.get("/api/v1/ai/actions", params={"page_size": 500})
    if reply.status_code != 200:
        return None
    found = {a["definition"]["name"]: a for a in reply.json()["actions"]}
    return found if {LIST, OFFER} <= set(found) else None


def _marks(owner: Browser, permissions: list[str]) -> None:
    reply = owner.request(
        "PUT", "/api/v1/authz/dangerous-actions", json={"permissions": permissions}
    )
    assert reply.status_code == 200, reply.text


def test_d1_d2_the_example_registers_at_start_and_list_actions_flags_dangerous(
    stack: Stack,
) -> None:
    """I5: the example's two actions appear in the registry (registered by the service itself at
    start, as mTLS identity `recruitment`). D1: an offer is dangerous, listing candidates is
    not. D2: the org marks candidate.list dangerous and ListActions says so at once."""
    owner, _, _ = demo_owner(stack)
    found = wait_for(lambda: _actions(owner), timeout=30, what="the example's actions")
    for name in (LIST, OFFER):
        assert found[name]["service"] == "recruitment"
        assert found[name]["definition"]["ai_allowed"] is True
    assert found[OFFER]["dangerous"] is True
    assert found[LIST]["dangerous"] is False
    assert found[OFFER]["definition"]["summary_template"] == (
        "Send an offer of {salary} {currency} to candidate {candidate_id}"
    )

    before = owner.get("/api/v1/authz/dangerous-actions").json()["org_permissions"]
    try:
        _marks(owner, [*before, LIST])
        now = _actions(owner)
        assert now is not None
        assert now[LIST]["dangerous"] is True
        assert now[OFFER]["dangerous"] is True
    finally:
        _marks(owner, before)  # the demo org is shared with other journeys
    after = _actions(owner)
    assert after is not None
    assert after[LIST]["dangerous"] is False


def test_i5_registering_is_for_the_service_itself_and_listing_needs_the_permission(
    stack: Stack,
) -> None:
    """I5: no HTTP route registers actions; over gRPC, a Helios identity registering the
    example's actions is refused and the registry keeps them; a member without ai.action.list
    cannot list."""
    owner, _, org_id = demo_owner(stack)
    before = wait_for(lambda: _actions(owner), timeout=30, what="the example's actions")
    assert owner.post("/api/v1/ai/actions", json={"service": "recruitment"}).status_code in (
        404,
        405,
    )

    async def register_as(identity: str) -> grpc.StatusCode:
        target = f"localhost:{stack.ports['ai-broker']}"
        async with secure_channel(target, stack.certs(identity)) as channel:
            stub = ai_broker_pb2_grpc.AiBrokerServiceStub(channel)
            try:
                await stub.RegisterActions(
                    ai_broker_pb2.RegisterActionsRequest(service="recruitment", actions=[]),
                    timeout=10,
                )
            except grpc.aio.AioRpcError as exc:
                return exc.code()
        return grpc.StatusCode.OK

    assert asyncio.run(register_as("gateway")) == grpc.StatusCode.PERMISSION_DENIED
    assert _actions(owner) == before

    _, email = demo_member(stack, owner, org_id)
    member = Browser(stack)
    member.sign_in(email)
    refused = member.get("/api/v1/ai/actions")
    assert refused.status_code == 403, refused.text
