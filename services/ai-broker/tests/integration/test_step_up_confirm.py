"""Step-up on confirmation (I3): when the org's AI policy asks for it, an AI's dangerous action
runs only when its person confirms with a fresh step-up token identity made for exactly that
person, session and invocation. The policy is the org's, set by people holding ai.policy.update."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helios.kernel.principal import load_private_key
from helios.kernel.step_up import StepUpGrant, StepUpSigner
from helios.proto.ai_broker.v1 import ai_broker_pb2
from helios.recruitment_example.catalog import CANDIDATE_LIST, OFFER_SEND

from .test_invoke import (
    DECIDING,
    DELEGATION,
    OWN,
    PENDING,
    SUCCEEDED,
    Metadata,
    World,
    confirm_request,
    diff_of,
    park_offer,
    refused,
    world,
)

pytestmark = pytest.mark.integration

__all__ = ["world"]  # the fixture, imported for these tests
CONFIRM = "ai.invocation.confirm"
TTL = dt.timedelta(minutes=5)


@pytest.fixture
def identity_step_up(principal_keys: tuple[Path, Path]) -> StepUpSigner:
    """Identity's step-up signer (its principal key)."""
    return StepUpSigner(load_private_key(principal_keys[0]))


async def set_policy(world: World, who: Metadata, required: bool, version: int) -> int:
    reply = await world.stub.UpdateAiPolicy(
        ai_broker_pb2.UpdateAiPolicyRequest(
            policy=ai_broker_pb2.AiPolicy(require_step_up_to_confirm=required),
            expected_version=version,
        ),
        metadata=who,
        timeout=10,
    )
    assert reply.policy.require_step_up_to_confirm is required
    return reply.policy.version


async def test_i3_the_org_ai_policy_is_set_by_its_admins_only_and_versioned(world: World) -> None:
    """I3: an org starts on the defaults (no step-up, version 0); the Owner sets the policy
    (audited); a stale version, a person without ai.policy.update, an AI and another org are
    refused."""
    owner = world.person(world.owner)
    read = await world.stub.GetAiPolicy(
        ai_broker_pb2.GetAiPolicyRequest(), metadata=owner, timeout=10
    )
    assert (read.policy.require_step_up_to_confirm, read.policy.version) == (False, 0)
    assert not read.policy.HasField("update_time")

    assert await set_policy(world, owner, True, 0) == 1
    await world.audit.expect_one(
        "ai.policy.update", diff={"require_step_up_to_confirm": True, "version": 1}
    )
    stale = await refused(set_policy(world, owner, False, 0))
    assert stale.code() == grpc.StatusCode.FAILED_PRECONDITION
    clerk = await world.member([*DELEGATION, (CANDIDATE_LIST, OWN)])
    not_granted = await refused(set_policy(world, world.person(clerk), False, 1))
    assert not_granted.code() == grpc.StatusCode.PERMISSION_DENIED
    ai = await world.delegate(world.owner)
    by_ai = await refused(set_policy(world, ai.ai, False, 1))
    assert by_ai.code() == grpc.StatusCode.PERMISSION_DENIED
    other_org = await refused(
        world.stub.GetAiPolicy(
            ai_broker_pb2.GetAiPolicyRequest(org_id=str(uuid.uuid4())), metadata=owner, timeout=10
        )
    )
    assert other_org.code() == grpc.StatusCode.PERMISSION_DENIED
    read = await world.stub.GetAiPolicy(
        ai_broker_pb2.GetAiPolicyRequest(), metadata=owner, timeout=10
    )
    assert (read.policy.require_step_up_to_confirm, read.policy.version) == (True, 1)


async def test_i3_with_step_up_asked_only_a_token_for_this_very_confirmation_runs_it(
    world: World, identity_step_up: StepUpSigner
) -> None:
    """I3: with the policy on, a parked offer says a step-up is needed; confirming without a
    token, or with one made for another invocation, session, person or purpose, expired, or
    signed by another key, is refused (audited, nothing sent). The right token runs it once,
    and the confirmation's audit row names the token's id."""
    await set_policy(world, world.person(world.owner), True, 0)
    clerk = await world.member([*DELEGATION, *DECIDING, (CANDIDATE_LIST, OWN), (OFFER_SEND, OWN)])
    ai = await world.delegate(clerk)
    reply = await park_offer(world, ai)
    other = await park_offer(world, ai)
    session = str(uuid.uuid4())
    person = world.person(clerk, session_id=session)
    shown = await world.get(person, reply.invocation_id)
    assert shown.state == PENDING
    assert shown.step_up_required
    grant = StepUpGrant(
        user_id=clerk,
        session_id=session,
        org_id=world.org,
        purpose=CONFIRM,
        binding=reply.invocation_id,
        method="totp",
    )
    now = world.clock.now

    def token(signer: StepUpSigner = identity_step_up, at: dt.datetime = now, **change: str) -> str:
        return signer.issue(dataclasses.replace(grant, **change), at, TTL)[0]

    await world.audit.mark()
    attempts = [
        ("", grpc.StatusCode.FAILED_PRECONDITION),
        (token(binding=other.invocation_id), grpc.StatusCode.PERMISSION_DENIED),
        (token(session_id=str(uuid.uuid4())), grpc.StatusCode.PERMISSION_DENIED),
        (token(user_id=world.owner), grpc.StatusCode.PERMISSION_DENIED),
        (token(purpose="identity.other"), grpc.StatusCode.PERMISSION_DENIED),
        (token(at=now - TTL - dt.timedelta(minutes=1)), grpc.StatusCode.PERMISSION_DENIED),
        (
            token(StepUpSigner(Ed25519PrivateKey.generate())),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
    ]
    for step_up, code in attempts:
        error = await refused(
            world.stub.ConfirmInvocation(
                confirm_request(reply, step_up_token=step_up), metadata=person, timeout=10
            )
        )
        assert error.code() == code, error.details()
        await world.audit.expect_one(CONFIRM, diff={"refused": True, "error_code": code.name})
    assert world.example.offers.sent(world.org) == []
    assert (await world.get(person, reply.invocation_id)).state == PENDING

    right, token_id = identity_step_up.issue(grant, now, TTL)
    done = await world.stub.ConfirmInvocation(
        confirm_request(reply, step_up_token=right), metadata=person, timeout=10
    )
    assert done.invocation.state == SUCCEEDED
    assert len(world.example.offers.sent(world.org)) == 1
    found = {event.action: event for event in await world.audit.new()}
    assert diff_of(found[CONFIRM])["step_up_token_id"] == token_id
    again = await refused(
        world.stub.ConfirmInvocation(
            confirm_request(reply, step_up_token=right), metadata=person, timeout=10
        )
    )
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert len(world.example.offers.sent(world.org)) == 1


async def test_i3_a_step_up_asked_when_parked_or_since_is_still_asked(world: World) -> None:
    """I3: an offer parked before the policy was switched on needs a step-up; one parked while
    it was on still needs one after it is switched off; one parked with it off runs without."""
    owner = world.person(world.owner)
    clerk = await world.member([*DELEGATION, *DECIDING, (CANDIDATE_LIST, OWN), (OFFER_SEND, OWN)])
    ai = await world.delegate(clerk)
    before = await park_offer(world, ai)
    assert not (await world.get(owner, before.invocation_id)).step_up_required
    version = await set_policy(world, owner, True, 0)
    during = await park_offer(world, ai)
    assert (await world.get(owner, during.invocation_id)).step_up_required
    for parked in (before, during):
        if parked is during:
            version = await set_policy(world, owner, False, version)
        error = await refused(
            world.stub.ConfirmInvocation(
                confirm_request(parked), metadata=world.person(clerk), timeout=10
            )
        )
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "step-up" in (error.details() or "")
    assert world.example.offers.sent(world.org) == []
    after = await park_offer(world, ai)
    done = await world.stub.ConfirmInvocation(
        confirm_request(after), metadata=world.person(clerk), timeout=10
    )
    assert done.invocation.state == SUCCEEDED
    assert len(world.example.offers.sent(world.org)) == 1
