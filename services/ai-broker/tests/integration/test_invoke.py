"""Invocations over gRPC (I2, I3, I4, I5): a real broker calling the example product service
`recruitment` (started in-process, its actions registered the way it registers them at start)
with a real authz; AI principals come from ResolveAiToken as the gateway gets them."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from helios.ai_broker.domain.hashing import json_hash, whole_numbers
from helios.ai_broker.store import tables
from helios.kernel.action_registry import action_registration_task
from helios.kernel.clients import call_metadata
from helios.kernel.principal import AssertionSigner
from helios.kernel.status import DETAILS_KEY
from helios.kernel.testing.audit_events import AuditEvents
from helios.proto.ai_broker.v1 import ai_broker_pb2, ai_broker_pb2_grpc
from helios.proto.audit.v1 import events_pb2
from helios.proto.authz.v1 import authz_pb2
from helios.proto.common.v1 import principal_pb2
from helios.proto.recruitment.v1 import recruitment_pb2
from helios.recruitment_example.catalog import CANDIDATE_LIST, OFFER_SEND, RECRUITMENT_ACTIONS

from .conftest import AuthzServer, BrokerServer, ExampleService, StartBroker

pytestmark = pytest.mark.integration

Metadata = tuple[tuple[str, str | bytes], ...]
Stub = ai_broker_pb2_grpc.AiBrokerServiceStub
OWN, TEAM, ANY = authz_pb2.SCOPE_OWN, authz_pb2.SCOPE_TEAM, authz_pb2.SCOPE_ANY
AI_IP = "203.0.113.9"
PERSON_IP = "198.51.100.4"
PENDING = ai_broker_pb2.INVOCATION_STATE_PENDING_CONFIRMATION
SUCCEEDED = ai_broker_pb2.INVOCATION_STATE_SUCCEEDED
DELEGATION = [("ai.session.create", OWN), ("ai.action.invoke", OWN)]
DECIDING = [("ai.invocation.confirm", OWN), ("ai.invocation.reject", OWN)]


class Clock:
    """The broker's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Delegation:
    """An AI session of `user`, its token and the AI principal's metadata as the gateway
    forwards it (the assertion ResolveAiToken returned)."""

    user: str
    session_id: str
    token: str
    ai: Metadata


@dataclass
class World:
    """A broker that calls the running example service, whose actions it has registered; an
    org seeded with its Owner; audit events read since the set-up."""

    broker: BrokerServer
    stub: Stub
    clock: Clock
    org: str
    owner: str
    example: ExampleService
    audit: AuditEvents
    signer: AssertionSigner
    db: AsyncConnection
    authz: AuthzServer

    def person(self, user: str, **extra: Any) -> Metadata:
        """A person in a user session of their own (unless `extra` says otherwise), as the
        gateway forwards them."""
        fields: dict[str, Any] = {
            "actor_type": principal_pb2.ACTOR_TYPE_USER,
            "actor_id": user,
            "org_id": self.org,
            "session_id": str(uuid.uuid4()),
            "ip": PERSON_IP,
            **extra,
        }
        principal = principal_pb2.Principal(**fields)
        return call_metadata(assertion=self.signer.sign(principal), client_ip=PERSON_IP)

    async def member(self, keys: list[tuple[str, int]]) -> str:
        """A new user of the org holding exactly `keys` (through a custom role)."""
        user = str(uuid.uuid4())
        await self.authz.grant(self.org, user, f"role-{user[:8]}", keys)
        return user

    async def delegate(self, user: str, permissions: tuple[str, ...] = ()) -> Delegation:
        """`user` delegates to an AI (narrowed to `permissions`); the gateway resolves the
        token to the AI principal."""
        created = await self.stub.CreateAiSession(
            ai_broker_pb2.CreateAiSessionRequest(purpose="hiring", permissions=permissions),
            metadata=self.person(user),
            timeout=10,
        )
        resolved = await self.stub.ResolveAiToken(
            ai_broker_pb2.ResolveAiTokenRequest(token=created.token),
            metadata=call_metadata(client_ip=AI_IP),
            timeout=10,
        )
        return Delegation(
            user,
            created.session.ai_session_id,
            created.token,
            call_metadata(assertion=resolved.assertion, client_ip=AI_IP),
        )

    async def invoke(
        self, who: Metadata, action: str, data: dict[str, Any] | None = None, **extra: Any
    ) -> ai_broker_pb2.InvokeResponse:
        request = ai_broker_pb2.InvokeRequest(action=action, **extra)
        request.input.update(data or {})
        reply: ai_broker_pb2.InvokeResponse = await self.stub.Invoke(
            request, metadata=who, timeout=10
        )
        return reply

    async def get(self, who: Metadata, invocation_id: str) -> ai_broker_pb2.Invocation:
        reply = await self.stub.GetInvocation(
            ai_broker_pb2.GetInvocationRequest(invocation_id=invocation_id),
            metadata=who,
            timeout=10,
        )
        return reply.invocation

    async def row(self, invocation_id: str) -> Any:
        """The invocation's row as stored."""
        rows = await self.db.execute(
            text(f"SELECT * FROM {tables.SCHEMA}.invocations WHERE id = :id"),  # noqa: S608
            {"id": uuid.UUID(invocation_id)},
        )
        return rows.one()


@pytest.fixture
async def world(
    start_broker: StartBroker,
    authz: AuthzServer,
    example_service: ExampleService,
    user_signer: AssertionSigner,
    db_connection: AsyncConnection,
) -> World:
    clock = Clock()
    broker = await start_broker(
        clock=clock,
        action_targets={"recruitment": example_service.address},
        ai_session_rate_limit=5,
    )
    await action_registration_task(
        "recruitment", RECRUITMENT_ACTIONS, f"localhost:{broker.port}", broker.pki["recruitment"]
    )(asyncio.Event())
    org, owner = str(uuid.uuid4()), str(uuid.uuid4())
    await authz.seed_org(org, owner)
    audit = AuditEvents(db_connection, tables.SCHEMA)
    await audit.mark()
    return World(
        broker=broker,
        stub=broker.stub(),
        clock=clock,
        org=org,
        owner=owner,
        example=example_service,
        audit=audit,
        signer=user_signer,
        db=db_connection,
        authz=authz,
    )


async def refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """The error `call` fails with (it must fail)."""
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call
    return failure.value


def diff_of(event: events_pb2.AuditEvent) -> dict[str, Any]:
    return json_format.MessageToDict(event.diff)


async def events(world: World) -> dict[str, list[events_pb2.AuditEvent]]:
    """The audit events since the last look, by action."""
    found: dict[str, list[events_pb2.AuditEvent]] = {}
    for event in await world.audit.new():
        found.setdefault(event.action, []).append(event)
    return found


def assert_ai_actor(
    event: events_pb2.AuditEvent, delegation: Delegation, org: str, ip: str = AI_IP
) -> None:
    """I4: the event is the AI's: actor_type ai, the delegating user, the AI session, the IP of
    the call that made it."""
    assert event.actor_type == principal_pb2.ACTOR_TYPE_AI
    assert event.actor_id == delegation.user
    assert event.session_id == delegation.session_id
    assert event.org_id == org
    assert event.ip == ip


async def test_i2_i4_invoke_runs_a_registered_action_as_the_ai_and_every_hash_recomputes(
    world: World,
) -> None:
    """I2: the Owner's AI lists candidates with exactly what the Owner sees calling the service
    directly. I4: the invoke and its completion are audited as the AI principal (actor_type ai,
    the delegating user, the AI session, the client IP) with input and output hashes, decision
    id, action and system-prompt hash; the hashes recompute from the response, the stored row
    and GetInvocation."""
    ai = await world.delegate(world.owner)
    await world.audit.mark()
    prompt_hash = "ab" * 32
    reply = await world.invoke(ai.ai, CANDIDATE_LIST, system_prompt_hash=prompt_hash)

    assert reply.WhichOneof("result") == "output"
    output = whole_numbers(json_format.MessageToDict(reply.output))
    direct = await world.example.stub.ListCandidates(
        recruitment_pb2.ListCandidatesRequest(), metadata=world.person(world.owner), timeout=10
    )
    assert output == json_format.MessageToDict(direct, preserving_proto_field_name=True)
    assert len(output["candidates"]) == 5
    assert reply.input_hash == json_hash({})
    assert reply.output_hash == json_hash(output)
    assert reply.decision_id

    row = await world.row(reply.invocation_id)
    assert row.state == "succeeded"
    assert json_hash(json.loads(row.input_json)) == row.input_hash == reply.input_hash
    assert json_hash(json.loads(row.output_json)) == row.output_hash == reply.output_hash
    assert str(row.ai_session_id) == ai.session_id
    assert str(row.user_id) == world.owner

    shown = await world.get(ai.ai, reply.invocation_id)
    assert shown.state == SUCCEEDED
    assert json_hash(whole_numbers(json_format.MessageToDict(shown.input))) == shown.input_hash
    assert json_hash(whole_numbers(json_format.MessageToDict(shown.output))) == shown.output_hash
    assert shown.output_hash == reply.output_hash
    assert not shown.dangerous

    found = await events(world)
    assert sorted(found) == ["ai.action.invoke", "ai.invocation.complete"]
    (invoked,) = found["ai.action.invoke"]
    (complete,) = found["ai.invocation.complete"]
    for event in (invoked, complete):
        assert_ai_actor(event, ai, world.org)
        assert event.resource_type == "ai.invocation"
        assert event.resource_id == reply.invocation_id
        assert event.decision_id == reply.decision_id
        assert event.outcome == events_pb2.AUDIT_OUTCOME_SUCCESS
        recorded = diff_of(event)
        assert recorded["action"] == CANDIDATE_LIST
        assert recorded["ai_session_id"] == ai.session_id
        assert recorded["input_hash"] == json_hash(json.loads(row.input_json))
        assert event.input_hash == reply.input_hash  # the audit row's own I4 column
        assert recorded["decision_id"] == reply.decision_id
        assert recorded["system_prompt_hash"] == prompt_hash
    assert diff_of(invoked)["state"] == "running"
    assert diff_of(complete)["state"] == "succeeded"
    assert diff_of(complete)["output_hash"] == json_hash(json.loads(row.output_json))
    assert complete.output_hash == reply.output_hash


async def test_i5_only_registered_actions_can_be_invoked_and_refusals_are_audited(
    world: World,
) -> None:
    """I5: an action outside the registry (a service method, an API key, impersonation, a role
    grant: nothing was registered under those names) is NOT_FOUND and nothing is called; the
    refusal is audited as the AI with the input hash."""
    ai = await world.delegate(world.owner)
    await world.audit.mark()
    for name in (
        "recruitment.candidate.delete",
        "identity.apiKey.create",
        "iam.user.impersonate",
        "authz.roleAssignment.create",
        "/helios.proto.recruitment.v1.RecruitmentService/SendOffer",
    ):
        error = await refused(world.invoke(ai.ai, name, {"candidate_id": "x"}))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert "not a registered action" in (error.details() or "")
        event = await world.audit.expect_one(
            "ai.action.invoke",
            outcome=events_pb2.AUDIT_OUTCOME_FAILURE,
            diff={
                "refused": True,
                "error_code": "NOT_FOUND",
                "action": name[:200],
                "input_hash": json_hash({"candidate_id": "x"}),
            },
        )
        assert_ai_actor(event, ai, world.org)
    assert world.example.offers.sent(world.org) == []


async def test_i2_only_an_ai_session_invokes_and_only_within_its_rights(world: World) -> None:
    """I2: a person's own session cannot Invoke; an AI acts in its own org only; input the
    action's schema refuses is INVALID_ARGUMENT naming the problems (audited with the input's
    hash, never its text); a narrowed AI cannot use a
    right outside its narrowing, and an AI of a user without the right cannot either (audited
    as DENIED with the decision id)."""
    error = await refused(world.invoke(world.person(world.owner), CANDIDATE_LIST))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "AI token" in (error.details() or "")

    ai = await world.delegate(world.owner)
    error = await refused(world.invoke(ai.ai, CANDIDATE_LIST, org_id=str(uuid.uuid4())))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED

    await world.audit.mark()
    bad = {"candidate_id": "", "salary": 1.5, "currency": "eur"}
    error = await refused(world.invoke(ai.ai, OFFER_SEND, bad))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    for problem in ("candidate_id:", "salary:", "currency:"):
        assert problem in (error.details() or "")
    event = await world.audit.expect_one(
        "ai.action.invoke",
        outcome=events_pb2.AUDIT_OUTCOME_FAILURE,
        diff={"error_code": "INVALID_ARGUMENT", "input_hash": json_hash(bad)},
    )
    assert "error_message" not in diff_of(event)
    assert "eur" not in event.diff.SerializeToString().decode(errors="replace")

    narrowed = await world.delegate(world.owner, (OFFER_SEND,))
    await world.audit.mark()
    error = await refused(world.invoke(narrowed.ai, CANDIDATE_LIST))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert CANDIDATE_LIST in (error.details() or "")
    event = await world.audit.expect_one(
        "ai.action.invoke",
        outcome=events_pb2.AUDIT_OUTCOME_DENIED,
        diff={"refused": True, "error_code": "PERMISSION_DENIED", "action": CANDIDATE_LIST},
    )
    assert event.decision_id
    assert_ai_actor(event, narrowed, world.org)

    clerk = await world.member(DELEGATION)
    clerks_ai = await world.delegate(clerk)
    error = await refused(world.invoke(clerks_ai.ai, CANDIDATE_LIST))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_i1_an_expired_or_revoked_ai_token_cannot_invoke(world: World) -> None:
    """I1: an AI principal whose session was revoked, or has expired, is refused by the broker
    itself (UNAUTHENTICATED), even with an assertion resolved while it was active: it can
    neither invoke nor read its earlier invocations."""
    revoked = await world.delegate(world.owner)
    listing = await world.invoke(revoked.ai, CANDIDATE_LIST)
    await world.stub.RevokeAiSession(
        ai_broker_pb2.RevokeAiSessionRequest(ai_session_id=revoked.session_id),
        metadata=world.person(world.owner),
        timeout=10,
    )
    error = await refused(world.invoke(revoked.ai, CANDIDATE_LIST))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    error = await refused(world.get(revoked.ai, listing.invocation_id))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED

    expiring = await world.delegate(world.owner)
    world.clock.now += dt.timedelta(hours=24)
    error = await refused(world.invoke(expiring.ai, CANDIDATE_LIST))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert world.example.offers.sent(world.org) == []


async def test_i1_the_rate_limit_of_an_ai_session_refuses_with_a_retry_delay(
    world: World,
) -> None:
    """I1: past its per-minute limit (5 here) an AI session is refused with RESOURCE_EXHAUSTED
    and a retry delay, audited; the next minute it may invoke again."""
    world.clock.now = world.clock.now.replace(second=30)
    ai = await world.delegate(world.owner)
    for _ in range(5):
        await world.invoke(ai.ai, CANDIDATE_LIST)
    await world.audit.mark()
    error = await refused(world.invoke(ai.ai, CANDIDATE_LIST))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    (details,) = [v for k, v in error.trailing_metadata() or () if k == DETAILS_KEY]
    assert b"type.googleapis.com/google.rpc.RetryInfo" in bytes(details)  # type: ignore[arg-type]
    await world.audit.expect_one(
        "ai.action.invoke", diff={"refused": True, "error_code": "RESOURCE_EXHAUSTED"}
    )
    world.clock.now += dt.timedelta(seconds=31)
    assert (await world.invoke(ai.ai, CANDIDATE_LIST)).output_hash


async def own_candidate(world: World, user: str) -> str:
    """The id of a candidate `user` owns (the example gives each caller two)."""
    listed = await world.example.stub.ListCandidates(
        recruitment_pb2.ListCandidatesRequest(), metadata=world.person(user), timeout=10
    )
    return next(c.candidate_id for c in listed.candidates if c.owner_id == user)


async def park_offer(world: World, ai: Delegation, **offer: Any) -> ai_broker_pb2.InvokeResponse:
    """The AI asks to send an offer to one of its user's candidates: parked."""
    data = {"candidate_id": await own_candidate(world, ai.user), "salary": 90000, "currency": "EUR"}
    reply = await world.invoke(ai.ai, OFFER_SEND, {**data, **offer})
    assert reply.WhichOneof("result") == "confirmation_required"
    return reply


def confirm_request(
    reply: ai_broker_pb2.InvokeResponse, **fields: Any
) -> ai_broker_pb2.ConfirmInvocationRequest:
    values = {
        "invocation_id": reply.invocation_id,
        "confirmation_id": reply.confirmation_required.confirmation_id,
        "input_hash": reply.input_hash,
        **fields,
    }
    return ai_broker_pb2.ConfirmInvocationRequest(**values)


async def test_i3_a_dangerous_action_runs_only_after_its_person_confirms_once_exactly(
    world: World,
) -> None:
    """I3: the AI's offer is parked (nothing sent) with a summary the server renders from the
    input, bound to the input hash, a nonce (only its hash stored) and a 15-minute deadline.
    The delegating person confirms in their own session: the exact parked input is sent, once;
    a second confirmation (a replay) is refused and sends nothing. I4: the decision is audited
    as the person, the call as the AI principal with both hashes, which recompute."""
    ai = await world.delegate(world.owner)
    candidate = await own_candidate(world, world.owner)
    data = {"candidate_id": candidate, "salary": 90000, "currency": "EUR"}
    await world.audit.mark()
    reply = await world.invoke(ai.ai, OFFER_SEND, data)

    parked = reply.confirmation_required
    assert reply.WhichOneof("result") == "confirmation_required"
    assert parked.summary == f'Send an offer of 90000 "EUR" to candidate "{candidate}"'
    assert parked.expires_at.ToDatetime(dt.UTC) == world.clock.now + dt.timedelta(minutes=15)
    assert len(parked.confirmation_id) == 43
    assert reply.input_hash == json_hash(data)
    assert reply.output_hash == ""
    assert world.example.offers.sent(world.org) == []
    row = await world.row(reply.invocation_id)
    assert row.state == "pending_confirmation"
    assert bytes(row.confirmation_hash) == hashlib.sha256(parked.confirmation_id.encode()).digest()
    assert parked.confirmation_id not in str(tuple(row))
    shown = await world.get(world.person(world.owner), reply.invocation_id)
    assert shown.state == PENDING
    assert shown.dangerous
    assert shown.confirmation.summary == parked.summary
    assert shown.confirmation.confirmation_id == ""
    (invoked,) = (await events(world))["ai.action.invoke"]
    assert_ai_actor(invoked, ai, world.org)
    assert diff_of(invoked)["state"] == "pending_confirmation"
    assert diff_of(invoked)["dangerous"] is True

    confirmed = await world.stub.ConfirmInvocation(
        confirm_request(reply), metadata=world.person(world.owner), timeout=10
    )
    done = confirmed.invocation
    assert done.state == SUCCEEDED
    assert done.decided_by == world.owner
    output = whole_numbers(json_format.MessageToDict(done.output))
    assert output["offer"]["candidate_id"] == candidate
    assert output["offer"]["salary"] == "90000"
    assert output["offer"]["sent_by"] == world.owner
    (sent,) = world.example.offers.sent(world.org)
    assert (sent.candidate_id, sent.salary, sent.currency) == (candidate, 90000, "EUR")
    assert sent.sent_by == world.owner
    row = await world.row(reply.invocation_id)
    assert json_hash(json.loads(row.input_json)) == row.input_hash == reply.input_hash
    assert json_hash(json.loads(row.output_json)) == row.output_hash == done.output_hash
    assert json_hash(output) == done.output_hash

    found = await events(world)
    (decided,) = found["ai.invocation.confirm"]
    assert decided.actor_type == principal_pb2.ACTOR_TYPE_USER
    assert decided.actor_id == world.owner
    assert decided.ip == PERSON_IP
    assert decided.decision_id
    assert diff_of(decided)["input_hash"] == reply.input_hash
    (complete,) = found["ai.invocation.complete"]
    assert_ai_actor(complete, ai, world.org, ip=PERSON_IP)
    assert diff_of(complete)["output_hash"] == done.output_hash
    assert diff_of(complete)["input_hash"] == reply.input_hash
    assert diff_of(complete)["decision_id"] == reply.decision_id

    again = await refused(
        world.stub.ConfirmInvocation(
            confirm_request(reply), metadata=world.person(world.owner), timeout=10
        )
    )
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert len(world.example.offers.sent(world.org)) == 1
    await world.audit.expect_one(
        "ai.invocation.confirm",
        outcome=events_pb2.AUDIT_OUTCOME_FAILURE,
        diff={"refused": True, "error_code": "FAILED_PRECONDITION"},
    )


async def test_i3_no_one_but_the_delegating_person_confirms_and_only_that_input(
    world: World,
) -> None:
    """I3: refused, each audited, the invocation left parked and nothing sent: the AI
    confirming its own action; another person (the org's Owner); the delegating person
    through an API key or while impersonated; a wrong nonce; another input hash; a malformed
    step-up token. Then the delegating person confirms: sent once."""
    clerk = await world.member([*DELEGATION, *DECIDING, (CANDIDATE_LIST, OWN), (OFFER_SEND, OWN)])
    ai = await world.delegate(clerk)
    reply = await park_offer(world, ai)
    await world.audit.mark()
    attempts: list[tuple[Metadata, ai_broker_pb2.ConfirmInvocationRequest, grpc.StatusCode]] = [
        (ai.ai, confirm_request(reply), grpc.StatusCode.PERMISSION_DENIED),
        (world.person(world.owner), confirm_request(reply), grpc.StatusCode.PERMISSION_DENIED),
        (
            world.person(clerk, session_id=f"apikey:{uuid.uuid4()}"),
            confirm_request(reply),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            world.person(clerk, impersonator_id=world.owner),
            confirm_request(reply),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            world.person(clerk),
            confirm_request(reply, confirmation_id="x" * 43),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            world.person(clerk),
            confirm_request(reply, input_hash=json_hash({"salary": 1})),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            world.person(clerk),
            confirm_request(reply, step_up_token="123456"),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
    ]
    for who, request, code in attempts:
        error = await refused(world.stub.ConfirmInvocation(request, metadata=who, timeout=10))
        assert error.code() == code, error.details()
        await world.audit.expect_one(
            "ai.invocation.confirm", diff={"refused": True, "error_code": code.name}
        )
    assert world.example.offers.sent(world.org) == []
    assert (await world.get(world.person(clerk), reply.invocation_id)).state == PENDING

    done = await world.stub.ConfirmInvocation(
        confirm_request(reply), metadata=world.person(clerk), timeout=10
    )
    assert done.invocation.state == SUCCEEDED
    assert len(world.example.offers.sent(world.org)) == 1


async def test_i3_an_expired_confirmation_cannot_run(world: World) -> None:
    """I3: past its deadline a parked invocation is refused (it becomes EXPIRED, audited), and
    one that is only read after its deadline shows EXPIRED; nothing is ever sent."""
    ai = await world.delegate(world.owner)
    late = await park_offer(world, ai)
    unread = await park_offer(world, ai, salary=95000)
    world.clock.now += dt.timedelta(minutes=15)
    await world.audit.mark()
    error = await refused(
        world.stub.ConfirmInvocation(
            confirm_request(late), metadata=world.person(world.owner), timeout=10
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "expired" in (error.details() or "")
    found = await events(world)
    assert [diff_of(e)["state"] for e in found["ai.invocation.expire"]] == ["expired"]
    assert diff_of(found["ai.invocation.confirm"][0])["refused"] is True
    shown = await world.get(world.person(world.owner), late.invocation_id)
    assert shown.state == ai_broker_pb2.INVOCATION_STATE_EXPIRED
    assert shown.HasField("complete_time")
    assert (await world.get(ai.ai, unread.invocation_id)).state == (
        ai_broker_pb2.INVOCATION_STATE_EXPIRED
    )
    assert (await world.row(unread.invocation_id)).state == "expired"
    assert world.example.offers.sent(world.org) == []


async def test_i3_a_rejected_invocation_never_runs(world: World) -> None:
    """I3: the delegating person rejects (the reason audited); confirming afterwards is
    refused and nothing is sent. The AI cannot reject either."""
    ai = await world.delegate(world.owner)
    reply = await park_offer(world, ai)
    reject = ai_broker_pb2.RejectInvocationRequest(
        invocation_id=reply.invocation_id,
        confirmation_id=reply.confirmation_required.confirmation_id,
        reason="salary too high",
    )
    error = await refused(world.stub.RejectInvocation(reject, metadata=ai.ai, timeout=10))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    await world.audit.mark()
    rejected = await world.stub.RejectInvocation(
        reject, metadata=world.person(world.owner), timeout=10
    )
    assert rejected.invocation.state == ai_broker_pb2.INVOCATION_STATE_REJECTED
    assert rejected.invocation.decided_by == world.owner
    await world.audit.expect_one(
        "ai.invocation.reject",
        actor_id=world.owner,
        actor_type=principal_pb2.ACTOR_TYPE_USER,
        diff={"state": "rejected", "reason": "salary too high", "input_hash": reply.input_hash},
    )
    error = await refused(
        world.stub.ConfirmInvocation(
            confirm_request(reply), metadata=world.person(world.owner), timeout=10
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert world.example.offers.sent(world.org) == []


async def test_i3_a_parked_invocation_of_a_revoked_ai_session_cannot_run(world: World) -> None:
    """I1, I3: once the person revokes the AI session, its parked invocations cannot be
    confirmed (they can still be rejected); nothing is sent."""
    ai = await world.delegate(world.owner)
    reply = await park_offer(world, ai)
    await world.stub.RevokeAiSession(
        ai_broker_pb2.RevokeAiSessionRequest(ai_session_id=ai.session_id),
        metadata=world.person(world.owner),
        timeout=10,
    )
    error = await refused(
        world.stub.ConfirmInvocation(
            confirm_request(reply), metadata=world.person(world.owner), timeout=10
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no longer active" in (error.details() or "")
    rejected = await world.stub.RejectInvocation(
        ai_broker_pb2.RejectInvocationRequest(
            invocation_id=reply.invocation_id,
            confirmation_id=reply.confirmation_required.confirmation_id,
        ),
        metadata=world.person(world.owner),
        timeout=10,
    )
    assert rejected.invocation.state == ai_broker_pb2.INVOCATION_STATE_REJECTED
    assert world.example.offers.sent(world.org) == []


async def test_i2_i3_confirmation_asks_authz_again_for_the_ai(world: World) -> None:
    """I2, I3: a right the user loses between the AI's request and the person's confirmation
    is missing at confirmation too (PERMISSION_DENIED, audited, nothing sent)."""
    clerk = await world.member([*DELEGATION, *DECIDING, (CANDIDATE_LIST, OWN)])
    offers = await world.authz.admin.CreateRole(
        authz_pb2.CreateRoleRequest(
            org_id=world.org,
            name=f"offers-{clerk[:8]}",
            permissions=[authz_pb2.ScopedPermission(permission=OFFER_SEND, scope=OWN)],
        ),
        timeout=10,
    )
    await world.authz.admin.AssignRole(
        authz_pb2.AssignRoleRequest(org_id=world.org, role_id=offers.role.role_id, user_id=clerk),
        timeout=10,
    )
    ai = await world.delegate(clerk)
    reply = await park_offer(world, ai)
    await world.authz.admin.UnassignRole(
        authz_pb2.UnassignRoleRequest(org_id=world.org, role_id=offers.role.role_id, user_id=clerk),
        timeout=10,
    )
    await world.audit.mark()
    error = await refused(
        world.stub.ConfirmInvocation(
            confirm_request(reply), metadata=world.person(clerk), timeout=10
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert OFFER_SEND in (error.details() or "")
    event = await world.audit.expect_one(
        "ai.invocation.confirm",
        outcome=events_pb2.AUDIT_OUTCOME_DENIED,
        diff={"refused": True, "error_code": "PERMISSION_DENIED"},
    )
    assert event.decision_id
    assert world.example.offers.sent(world.org) == []


async def test_d2_an_action_the_org_marks_dangerous_is_parked_at_once(world: World) -> None:
    """D2, I3: once the org marks recruitment.candidate.list dangerous, the AI's listing is
    parked for its person instead of run; confirmed, it runs."""
    ai = await world.delegate(world.owner)
    assert (await world.invoke(ai.ai, CANDIDATE_LIST)).WhichOneof("result") == "output"
    await world.authz.admin.SetDangerousActions(
        authz_pb2.SetDangerousActionsRequest(org_id=world.org, permissions=[CANDIDATE_LIST]),
        timeout=10,
    )
    reply = await world.invoke(ai.ai, CANDIDATE_LIST)
    assert reply.WhichOneof("result") == "confirmation_required"
    assert reply.confirmation_required.summary == "List the candidates you can see"
    done = await world.stub.ConfirmInvocation(
        confirm_request(reply), metadata=world.person(world.owner), timeout=10
    )
    assert done.invocation.state == SUCCEEDED
    assert len(done.invocation.output.fields["candidates"].list_value.values) == 5


async def test_i3_a_target_failure_after_confirmation_is_recorded_as_failed(world: World) -> None:
    """I3, I4: a confirmed offer the target refuses (an unknown candidate) ends FAILED with the
    target's status and message, audited as the AI call; it is not retried."""
    ai = await world.delegate(world.owner)
    reply = await world.invoke(
        ai.ai, OFFER_SEND, {"candidate_id": "cand-unknown", "salary": 1, "currency": "EUR"}
    )
    await world.audit.mark()
    confirmed = await world.stub.ConfirmInvocation(
        confirm_request(reply), metadata=world.person(world.owner), timeout=10
    )
    done = confirmed.invocation
    assert done.state == ai_broker_pb2.INVOCATION_STATE_FAILED
    assert done.error_code == "NOT_FOUND"
    assert "no such candidate" in done.error_message
    assert done.output_hash == ""
    found = await events(world)
    (complete,) = found["ai.invocation.complete"]
    assert complete.outcome == events_pb2.AUDIT_OUTCOME_FAILURE
    assert diff_of(complete)["error_code"] == "NOT_FOUND"
    assert (await world.row(reply.invocation_id)).state == "failed"


async def test_i4_invocations_are_shown_to_their_person_their_ai_and_readers_only(
    world: World,
) -> None:
    """GetInvocation: the delegating person, the AI session that invoked, and a person with
    `ai.invocation.read` reaching it (the Owner: any) see it; another AI session of the same
    person, a member without the right and another org do not."""
    clerk = await world.member([*DELEGATION, (CANDIDATE_LIST, OWN)])
    ai = await world.delegate(clerk)
    reply = await world.invoke(ai.ai, CANDIDATE_LIST)
    for reader in (world.person(clerk), ai.ai, world.person(world.owner)):
        assert (await world.get(reader, reply.invocation_id)).invocation_id == reply.invocation_id
    other_ai = await world.delegate(clerk)
    outsider = await world.member([])
    for stranger in (other_ai.ai, world.person(outsider)):
        error = await refused(world.get(stranger, reply.invocation_id))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    elsewhere = world.person(str(uuid.uuid4()), org_id=str(uuid.uuid4()))
    error = await refused(world.get(elsewhere, reply.invocation_id))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_i4_replay_check_reruns_a_read_only_invocation_and_compares_hashes(
    world: World,
) -> None:
    """I4: ReplayCheck re-runs a recorded candidate listing as the same AI principal and the
    output hashes match (audited as the AI with the person who asked). Refused: an AI asking,
    a person without `ai.invocation.replay`, a dangerous invocation, and once the AI session is
    revoked."""
    ai = await world.delegate(world.owner)
    listing = await world.invoke(ai.ai, CANDIDATE_LIST)
    await world.audit.mark()
    check = ai_broker_pb2.ReplayCheckRequest(invocation_id=listing.invocation_id)
    result = await world.stub.ReplayCheck(check, metadata=world.person(world.owner), timeout=10)
    assert result.matches
    assert result.recorded_output_hash == result.replayed_output_hash == listing.output_hash
    event = await world.audit.expect_one(
        "ai.invocation.replay",
        diff={
            "matches": True,
            "recorded_output_hash": listing.output_hash,
            "replayed_output_hash": listing.output_hash,
            "input_hash": listing.input_hash,
            "requested_by": world.owner,
        },
    )
    assert_ai_actor(event, ai, world.org, ip=PERSON_IP)

    error = await refused(world.stub.ReplayCheck(check, metadata=ai.ai, timeout=10))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    outsider = await world.member([])
    error = await refused(
        world.stub.ReplayCheck(check, metadata=world.person(outsider), timeout=10)
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    offer = await park_offer(world, ai)
    await world.stub.ConfirmInvocation(
        confirm_request(offer), metadata=world.person(world.owner), timeout=10
    )
    error = await refused(
        world.stub.ReplayCheck(
            ai_broker_pb2.ReplayCheckRequest(invocation_id=offer.invocation_id),
            metadata=world.person(world.owner),
            timeout=10,
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert len(world.example.offers.sent(world.org)) == 1
    await world.stub.RevokeAiSession(
        ai_broker_pb2.RevokeAiSessionRequest(ai_session_id=ai.session_id),
        metadata=world.person(world.owner),
        timeout=10,
    )
    await world.audit.mark()
    error = await refused(
        world.stub.ReplayCheck(check, metadata=world.person(world.owner), timeout=10)
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no longer active" in (error.details() or "")
    await world.audit.expect_one("ai.invocation.replay", diff={"refused": True})


_SCOPE_OR_NONE = st.sampled_from([None, OWN, TEAM, ANY])
_NARROWING_ENTRIES = (
    CANDIDATE_LIST,
    f"{CANDIDATE_LIST}:own",
    f"{CANDIDATE_LIST}:any",
    OFFER_SEND,
    f"{OFFER_SEND}:team",
)
_RANK = {OWN: 1, TEAM: 2, ANY: 3}
_NAMED_RANK = {"": 1, "own": 1, "team": 2, "any": 3}


async def outcome(call: Awaitable[Any]) -> tuple[Any, grpc.StatusCode]:
    """The reply of `call` and OK, or None and the status it failed with."""
    try:
        return await call, grpc.StatusCode.OK
    except grpc.aio.AioRpcError as exc:
        return None, exc.code()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    list_scope=_SCOPE_OR_NONE,
    offer_scope=_SCOPE_OR_NONE,
    narrowing=st.frozensets(st.sampled_from(_NARROWING_ENTRIES), max_size=3),
)
@example(list_scope=OWN, offer_scope=None, narrowing=frozenset())
@example(list_scope=ANY, offer_scope=ANY, narrowing=frozenset({OFFER_SEND}))
@example(list_scope=None, offer_scope=ANY, narrowing=frozenset())
@example(list_scope=TEAM, offer_scope=OWN, narrowing=frozenset({f"{CANDIDATE_LIST}:own"}))
async def test_i2_property_an_ai_does_what_its_user_can_and_nothing_more(
    world: World,
    list_scope: int | None,
    offer_scope: int | None,
    narrowing: frozenset[str],
) -> None:
    """I2, for random grants of a user and a random narrowing of their AI session: the AI's
    Invoke of recruitment.candidate.list succeeds iff the user, calling the service directly,
    may list candidates and the narrowing (if any) includes the key, and then it sees exactly
    what the user sees. A narrowing beyond the user's grants cannot even be delegated."""
    grants = [
        (key, scope)
        for key, scope in ((CANDIDATE_LIST, list_scope), (OFFER_SEND, offer_scope))
        if scope is not None
    ]
    held = {key: _RANK[scope] for key, scope in grants}
    user = await world.member([*DELEGATION, *grants])
    direct, direct_status = await outcome(
        world.example.stub.ListCandidates(
            recruitment_pb2.ListCandidatesRequest(), metadata=world.person(user), timeout=10
        )
    )
    assert direct_status in (grpc.StatusCode.OK, grpc.StatusCode.PERMISSION_DENIED)
    delegable = all(
        held.get(entry.partition(":")[0], 0) >= _NAMED_RANK[entry.partition(":")[2]]
        for entry in narrowing
    )
    ai, delegated = await outcome(world.delegate(user, tuple(sorted(narrowing))))
    assert delegated == (grpc.StatusCode.OK if delegable else grpc.StatusCode.PERMISSION_DENIED)
    if ai is None:
        return
    narrowed_in = not narrowing or any(e.partition(":")[0] == CANDIDATE_LIST for e in narrowing)
    reply, status = await outcome(world.invoke(ai.ai, CANDIDATE_LIST))
    if direct is not None and narrowed_in:
        assert status == grpc.StatusCode.OK
        output = whole_numbers(json_format.MessageToDict(reply.output))
        assert output == json_format.MessageToDict(direct, preserving_proto_field_name=True)
    else:
        assert status == grpc.StatusCode.PERMISSION_DENIED
