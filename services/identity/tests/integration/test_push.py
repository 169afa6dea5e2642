"""Push 2FA over gRPC against real PostgreSQL (A3): a device registered by its Ed25519 key
approves or denies a sign-in, the browser watches the push challenge, CompleteSecondFactor
opens the session once; forged, foreign, replayed and late answers are refused and audited."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from helios.identity.domain.push import PushPolicy
from helios.kernel.clients import call_metadata
from helios.kernel.testing.turns import TurnTakingSession
from helios.proto.audit.v1 import events_pb2
from helios.proto.identity.v1 import identity_pb2
from helios.push_device import Device

PASSWORD = "correct horse battery staple"
EDGE = call_metadata(client_ip="203.0.113.7", user_agent="itest-browser/2.0")
PENDING = identity_pb2.PUSH_CHALLENGE_STATE_PENDING
APPROVED = identity_pb2.PUSH_CHALLENGE_STATE_APPROVED
DENIED = identity_pb2.PUSH_CHALLENGE_STATE_DENIED
EXPIRED = identity_pb2.PUSH_CHALLENGE_STATE_EXPIRED
PUSH = identity_pb2.SECOND_FACTOR_METHOD_PUSH
FAST_WATCH = PushPolicy(watch_poll=dt.timedelta(milliseconds=20))

Events = Callable[[], Awaitable[list[tuple[str, events_pb2.AuditEvent]]]]


@pytest.fixture
def db_session(db_connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Overrides the kernel's: the test's rolled-back connection taken in turns, because a
    watch polls it from the server while the test and other calls use it."""
    return async_sessionmaker(
        bind=db_connection,
        class_=TurnTakingSession,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
        turns=asyncio.Lock(),
    )


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


async def _server(start_identity: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("push_policy", FAST_WATCH)
    return await start_identity(**kwargs)


async def _enrolled_user(stub: Any, *devices: Device) -> str:
    """Sign up a user and register `devices` for them; returns the e-mail."""
    email = f"grace.{uuid.uuid4().hex[:10]}@example.com"
    await stub.SignUp(identity_pb2.SignUpRequest(email=email, password=PASSWORD), timeout=10)
    signed_in = await stub.SignIn(
        identity_pb2.SignInRequest(email=email, password=PASSWORD), metadata=EDGE, timeout=10
    )
    for device in devices:
        await _register(stub, signed_in.session_token, device)
    return email


async def _register(stub: Any, session_token: str, device: Device) -> Any:
    resolved = await stub.ResolveSession(
        identity_pb2.ResolveSessionRequest(session_token=session_token), timeout=10
    )
    reply = await stub.RegisterPushDevice(
        device.registration("Grace's phone"),
        metadata=call_metadata(assertion=resolved.assertion),
        timeout=10,
    )
    device.registered(reply)
    return reply


async def _sign_in_challenge(stub: Any, email: str) -> str:
    """The challenge token of a password sign-in that waits for its second factor."""
    reply = await stub.SignIn(
        identity_pb2.SignInRequest(email=email, password=PASSWORD), metadata=EDGE, timeout=10
    )
    assert not reply.session_token
    assert PUSH in reply.second_factor.methods
    return str(reply.second_factor.challenge_token)


async def _push(stub: Any, token: str) -> identity_pb2.PushChallenge:
    reply: identity_pb2.CreatePushChallengeResponse = await stub.CreatePushChallenge(
        identity_pb2.CreatePushChallengeRequest(challenge_token=token), metadata=EDGE, timeout=10
    )
    return reply.push_challenge


async def _pending(stub: Any, device: Device, now: dt.datetime | None = None) -> list[Any]:
    reply = await stub.ListDevicePushChallenges(device.listing(now), timeout=10)
    return list(reply.push_challenges)


async def _refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


async def _states(watch: Any) -> AsyncIterator[int]:
    async with asyncio.timeout(10):
        while (message := await watch.read()) is not grpc.aio.EOF:
            yield message.push_challenge.state


async def _complete(stub: Any, token: str) -> Any:
    return await stub.CompleteSecondFactor(
        identity_pb2.CompleteSecondFactorRequest(challenge_token=token, method=PUSH),
        metadata=EDGE,
        timeout=10,
    )


async def _actions(outbox_events: Events, prefix: str = "identity.push") -> list[tuple[str, Any]]:
    return [
        (event.action, event)
        for _, event in await outbox_events()
        if event.action.startswith(prefix)
    ]


def _failures(actions: list[tuple[str, Any]]) -> list[str]:
    return [
        event.diff["reason"]
        for _, event in actions
        if event.outcome == events_pb2.AUDIT_OUTCOME_FAILURE
    ]


async def test_a3_push_approved_on_device_opens_the_session_once(
    start_identity: Any, outbox_events: Events
) -> None:
    """A3: sign-in -> CreatePushChallenge -> the device lists and approves it -> the watch
    reports PENDING then APPROVED and ends -> CompleteSecondFactor(PUSH) opens a session, once."""
    server = await _server(start_identity)
    stub = server.stub()
    device = Device.generate()
    email = await _enrolled_user(stub, device)
    token = await _sign_in_challenge(stub, email)
    push = await _push(stub, token)
    assert push.state == PENDING
    assert len(push.nonce) == 32
    assert (push.ip, push.user_agent) == ("203.0.113.7", "itest-browser/2.0")

    watch = stub.WatchPushChallenge(
        identity_pb2.WatchPushChallengeRequest(
            push_challenge_id=push.push_challenge_id, challenge_token=token
        ),
        timeout=10,
    )
    states = _states(watch)
    assert await anext(states) == PENDING
    (listed,) = await _pending(stub, device)
    assert listed.push_challenge_id == push.push_challenge_id
    assert listed.nonce == push.nonce
    answered = await stub.RespondPushChallenge(device.answer(listed, approve=True), timeout=10)
    assert answered.push_challenge.state == APPROVED
    assert [state async for state in states] == [APPROVED]
    assert await _pending(stub, device) == []

    completed = await _complete(stub, token)
    assert completed.session_token.startswith("hls_")
    assert completed.session.method == "push"
    again = await _refused(_complete(stub, token))
    assert again.code() == grpc.StatusCode.UNAUTHENTICATED

    actions = await _actions(outbox_events)
    assert [action for action, _ in actions] == [
        "identity.pushDevice.register",
        "identity.pushChallenge.create",
        "identity.pushChallenge.approve",
    ]
    approve = actions[-1][1]
    assert approve.resource_id == push.push_challenge_id
    assert approve.diff["device_id"] == device.device_id
    sign_ins = [e for _, e in await outbox_events() if e.action == "identity.user.signIn"]
    assert {
        e.diff["method"] for e in sign_ins if e.outcome == events_pb2.AUDIT_OUTCOME_SUCCESS
    } == {
        "password",
        "push",
    }


async def test_a3_push_denied_on_device_gives_no_session(
    start_identity: Any, outbox_events: Events
) -> None:
    """A3: a denial ends the watch with DENIED; CompleteSecondFactor(PUSH) is then refused."""
    server = await _server(start_identity)
    stub = server.stub()
    device = Device.generate()
    token = await _sign_in_challenge(stub, await _enrolled_user(stub, device))
    push = await _push(stub, token)
    (listed,) = await _pending(stub, device)
    denied = await stub.RespondPushChallenge(device.answer(listed, approve=False), timeout=10)
    assert denied.push_challenge.state == DENIED

    watch = stub.WatchPushChallenge(
        identity_pb2.WatchPushChallengeRequest(
            push_challenge_id=push.push_challenge_id, challenge_token=token
        ),
        timeout=10,
    )
    assert [state async for state in _states(watch)] == [DENIED]
    refused = await _refused(_complete(stub, token))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert [a for a, _ in await _actions(outbox_events, "identity.pushChallenge")] == [
        "identity.pushChallenge.create",
        "identity.pushChallenge.deny",
    ]


async def test_a3_push_times_out_and_the_watch_ends_expired(
    start_identity: Any, outbox_events: Events
) -> None:
    """A3: once the clock passes the push's expiry the watch reports EXPIRED and ends; a late
    approval is refused (FAILED_PRECONDITION) and audited; no session opens."""
    clock = _Clock()
    server = await _server(start_identity, clock=clock)
    stub = server.stub()
    device = Device.generate()
    token = await _sign_in_challenge(stub, await _enrolled_user(stub, device))
    push = await _push(stub, token)
    assert push.expires_at.ToDatetime(dt.UTC) == clock.now + dt.timedelta(minutes=2)
    (listed,) = await _pending(stub, device)

    watch = stub.WatchPushChallenge(
        identity_pb2.WatchPushChallengeRequest(
            push_challenge_id=push.push_challenge_id, challenge_token=token
        ),
        timeout=10,
    )
    states = _states(watch)
    assert await anext(states) == PENDING
    clock.now += dt.timedelta(minutes=2)
    assert [state async for state in states] == [EXPIRED]

    late = await _refused(stub.RespondPushChallenge(device.answer(listed, True), timeout=10))
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "expired" in (late.details() or "")
    assert await _pending(stub, device, clock.now) == []
    refused = await _refused(_complete(stub, token))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION

    actions = await _actions(outbox_events, "identity.pushChallenge")
    assert [a for a, _ in actions] == [
        "identity.pushChallenge.create",
        "identity.pushChallenge.expire",
        "identity.pushChallenge.respond",
    ]
    assert actions[1][1].diff["reason"] == "timeout"
    assert _failures(actions) == ["expired"]


async def test_a3_forged_and_other_device_signatures_refused(
    start_identity: Any, outbox_events: Events
) -> None:
    """A3: an answer signed by a key that is not the named device's (a forger, or another device
    of the same user) is PERMISSION_DENIED and audited; the push stays pending."""
    server = await _server(start_identity)
    stub = server.stub()
    phone, tablet = Device.generate(), Device.generate()
    token = await _sign_in_challenge(stub, await _enrolled_user(stub, phone, tablet))
    await _push(stub, token)
    (listed,) = await _pending(stub, phone)

    forger = Device.generate()
    forger.device_id = phone.device_id
    tablet_as_phone = Device.restore(tablet.private_bytes(), phone.device_id)
    for impostor in (forger, tablet_as_phone):
        refused = await _refused(
            stub.RespondPushChallenge(impostor.answer(listed, approve=True), timeout=10)
        )
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "signature" in (refused.details() or "")
    garbage = phone.answer(listed, approve=True)
    garbage.signature = b"\x00" * 10
    malformed = await _refused(stub.RespondPushChallenge(garbage, timeout=10))
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
    stolen_listing = forger.listing()
    denied = await _refused(stub.ListDevicePushChallenges(stolen_listing, timeout=10))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED

    (still,) = await _pending(stub, tablet)
    assert still.state == PENDING
    actions = await _actions(outbox_events, "identity.pushChallenge")
    assert _failures(actions) == ["bad_signature", "bad_signature", "bad_signature"]


async def test_a3_device_of_another_user_refused(
    start_identity: Any, outbox_events: Events
) -> None:
    """A3: a device of another user neither sees nor answers the push (PERMISSION_DENIED,
    audited as foreign_device)."""
    server = await _server(start_identity)
    stub = server.stub()
    mine, theirs = Device.generate(), Device.generate()
    token = await _sign_in_challenge(stub, await _enrolled_user(stub, mine))
    await _enrolled_user(stub, theirs)
    await _push(stub, token)
    (listed,) = await _pending(stub, mine)
    assert await _pending(stub, theirs) == []

    refused = await _refused(stub.RespondPushChallenge(theirs.answer(listed, True), timeout=10))
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    unknown = Device.generate()
    unknown.device_id = str(uuid.uuid4())
    nobody = await _refused(stub.RespondPushChallenge(unknown.answer(listed, True), timeout=10))
    assert nobody.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _failures(await _actions(outbox_events, "identity.pushChallenge")) == [
        "foreign_device",
        "unknown_device",
    ]
    assert [c.state for c in await _pending(stub, mine)] == [PENDING]


async def test_a3_replayed_answer_refused_after_a_final_state(
    start_identity: Any, outbox_events: Events
) -> None:
    """A3: replaying the device's approval, or answering the other way afterwards, is
    FAILED_PRECONDITION and audited."""
    server = await _server(start_identity)
    stub = server.stub()
    device = Device.generate()
    token = await _sign_in_challenge(stub, await _enrolled_user(stub, device))
    await _push(stub, token)
    (listed,) = await _pending(stub, device)
    approval = device.answer(listed, approve=True)
    await stub.RespondPushChallenge(approval, timeout=10)
    for replay in (approval, device.answer(listed, approve=False)):
        refused = await _refused(stub.RespondPushChallenge(replay, timeout=10))
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert refused.details() == "push challenge is approved already"
    actions = await _actions(outbox_events, "identity.pushChallenge")
    assert _failures(actions) == ["answered_already", "answered_already"]


async def test_a3_new_push_supersedes_the_pending_one(
    start_identity: Any, outbox_events: Events
) -> None:
    """A3: one pending push per sign-in: asking again expires the first (its watch ends
    EXPIRED, its approval is refused); only the new one is listed."""
    server = await _server(start_identity)
    stub = server.stub()
    device = Device.generate()
    token = await _sign_in_challenge(stub, await _enrolled_user(stub, device))
    first = await _push(stub, token)
    (first_listed,) = await _pending(stub, device)
    second = await _push(stub, token)
    assert second.nonce != first.nonce
    assert [c.push_challenge_id for c in await _pending(stub, device)] == [second.push_challenge_id]
    watch = stub.WatchPushChallenge(
        identity_pb2.WatchPushChallengeRequest(
            push_challenge_id=first.push_challenge_id, challenge_token=token
        ),
        timeout=10,
    )
    assert [state async for state in _states(watch)] == [EXPIRED]
    late = await _refused(stub.RespondPushChallenge(device.answer(first_listed, True), timeout=10))
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    expired = [e for a, e in await _actions(outbox_events) if a == "identity.pushChallenge.expire"]
    assert [(e.resource_id, e.diff["reason"]) for e in expired] == [
        (first.push_challenge_id, "superseded")
    ]


async def test_a3_push_requests_per_sign_in_are_capped(start_identity: Any) -> None:
    """A3: against push fatigue, a sign-in may send only `max_per_sign_in` pushes."""
    policy = PushPolicy(max_per_sign_in=2, watch_poll=dt.timedelta(milliseconds=20))
    server = await _server(start_identity, push_policy=policy)
    stub = server.stub()
    token = await _sign_in_challenge(stub, await _enrolled_user(stub, Device.generate()))
    await _push(stub, token)
    await _push(stub, token)
    capped = await _refused(_push(stub, token))
    assert capped.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a3_listing_refuses_a_timestamp_over_60_seconds_off(start_identity: Any) -> None:
    """A3: the device's signed listing time may be 60 s off the server clock, not more."""
    clock = _Clock()
    server = await _server(start_identity, clock=clock)
    stub = server.stub()
    device = Device.generate()
    await _enrolled_user(stub, device)
    assert await _pending(stub, device, clock.now - dt.timedelta(seconds=60)) == []
    assert await _pending(stub, device, clock.now + dt.timedelta(seconds=60)) == []
    for off in (dt.timedelta(seconds=-61), dt.timedelta(seconds=61)):
        stale = await _refused(_pending(stub, device, clock.now + off))
        assert stale.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "clock" in (stale.details() or "")


async def test_a3_watch_sees_an_answer_given_through_another_replica(
    start_identity: Any,
) -> None:
    """A3: the browser watches on one identity replica, the device answers through another:
    the watch sees the approval (it reads the shared database)."""
    watched, answering = await _server(start_identity), await _server(start_identity)
    device = Device.generate()
    token = await _sign_in_challenge(watched.stub(), await _enrolled_user(watched.stub(), device))
    push = await _push(watched.stub(), token)
    watch = watched.stub().WatchPushChallenge(
        identity_pb2.WatchPushChallengeRequest(
            push_challenge_id=push.push_challenge_id, challenge_token=token
        ),
        timeout=10,
    )
    states = _states(watch)
    assert await anext(states) == PENDING
    (listed,) = await _pending(answering.stub(), device)
    await answering.stub().RespondPushChallenge(device.answer(listed, True), timeout=10)
    assert [state async for state in states] == [APPROVED]


async def test_a3_watch_needs_the_sign_in_token_of_its_push(start_identity: Any) -> None:
    """A3: only the browser holding the sign-in's challenge token may watch its push."""
    server = await _server(start_identity)
    stub = server.stub()
    email = await _enrolled_user(stub, Device.generate())
    token, other_token = (
        await _sign_in_challenge(stub, email),
        await _sign_in_challenge(stub, email),
    )
    push = await _push(stub, token)
    for challenge_token, code in (
        (other_token, grpc.StatusCode.NOT_FOUND),
        ("hlo_" + "A" * 43, grpc.StatusCode.UNAUTHENTICATED),
    ):
        watch = stub.WatchPushChallenge(
            identity_pb2.WatchPushChallengeRequest(
                push_challenge_id=push.push_challenge_id, challenge_token=challenge_token
            ),
            timeout=10,
        )
        refused = await _refused(watch.read())
        assert refused.code() == code


async def test_a3_register_and_remove_push_devices(
    start_identity: Any, outbox_events: Events
) -> None:
    """A3: registration needs `identity.mfa.enroll` on one's own account and a 32-byte key, a
    key is registered once per user; removal takes only one's own device; both audited."""
    server = await _server(start_identity)
    stub = server.stub()
    email = f"lin.{uuid.uuid4().hex[:10]}@example.com"
    await stub.SignUp(identity_pb2.SignUpRequest(email=email, password=PASSWORD), timeout=10)
    signed_in = await stub.SignIn(
        identity_pb2.SignInRequest(email=email, password=PASSWORD), timeout=10
    )
    resolved = await stub.ResolveSession(
        identity_pb2.ResolveSessionRequest(session_token=signed_in.session_token), timeout=10
    )
    as_user = call_metadata(assertion=resolved.assertion)
    device = Device.generate()
    reply = await stub.RegisterPushDevice(
        device.registration(" Lin's phone "), metadata=as_user, timeout=10
    )
    assert reply.device.name == "Lin's phone"

    twice = await _refused(
        stub.RegisterPushDevice(device.registration("again"), metadata=as_user, timeout=10)
    )
    assert twice.code() == grpc.StatusCode.ALREADY_EXISTS
    short_key = identity_pb2.RegisterPushDeviceRequest(name="x", public_key=b"\x01" * 31)
    bad = await _refused(stub.RegisterPushDevice(short_key, metadata=as_user, timeout=10))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    anonymous = await _refused(stub.RegisterPushDevice(device.registration("x"), timeout=10))
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED

    other = Device.generate()
    other_email = await _enrolled_user(stub, other)
    assert other_email
    foreign = await _refused(
        stub.RemovePushDevice(
            identity_pb2.RemovePushDeviceRequest(device_id=other.device_id),
            metadata=as_user,
            timeout=10,
        )
    )
    assert foreign.code() == grpc.StatusCode.NOT_FOUND
    await stub.RemovePushDevice(
        identity_pb2.RemovePushDeviceRequest(device_id=reply.device.device_id),
        metadata=as_user,
        timeout=10,
    )
    after = await stub.SignIn(
        identity_pb2.SignInRequest(email=email, password=PASSWORD), timeout=10
    )
    assert after.session_token, "without push devices the sign-in needs no second factor"
    assert [a for a, _ in await _actions(outbox_events, "identity.pushDevice")] == [
        "identity.pushDevice.register",
        "identity.pushDevice.register",
        "identity.pushDevice.remove",
    ]


async def test_a3_register_needs_a_signed_in_person(start_identity: Any) -> None:
    """A3: registering a device is a person's own act in their session: a call without a
    principal is UNAUTHENTICATED and nothing is stored."""
    server = await _server(start_identity)
    device = Device.generate()
    refused = await _refused(
        server.stub().RegisterPushDevice(
            identity_pb2.RegisterPushDeviceRequest(name="phone", public_key=device.public_key),
            timeout=10,
        )
    )
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a3_push_refused_once_the_device_is_gone(start_identity: Any) -> None:
    """A3: a sign-in whose user removed every push device cannot ask for a push."""
    server = await _server(start_identity)
    stub = server.stub()
    device = Device.generate()
    email = f"max.{uuid.uuid4().hex[:10]}@example.com"
    await stub.SignUp(identity_pb2.SignUpRequest(email=email, password=PASSWORD), timeout=10)
    signed_in = await stub.SignIn(
        identity_pb2.SignInRequest(email=email, password=PASSWORD), timeout=10
    )
    await _register(stub, signed_in.session_token, device)
    token = await _sign_in_challenge(stub, email)
    resolved = await stub.ResolveSession(
        identity_pb2.ResolveSessionRequest(session_token=signed_in.session_token), timeout=10
    )
    await stub.RemovePushDevice(
        identity_pb2.RemovePushDeviceRequest(device_id=device.device_id),
        metadata=call_metadata(assertion=resolved.assertion),
        timeout=10,
    )
    refused = await _refused(_push(stub, token))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    unknown = await _refused(_push(stub, "hlo_" + "B" * 43))
    assert unknown.code() == grpc.StatusCode.UNAUTHENTICATED
