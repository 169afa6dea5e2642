"""Sign-in over gRPC against real PostgreSQL: opaque tokens stored as hashes, one answer for every
failure, audited attempts, argon2 parameters upgraded on the next sign-in (A1, S1)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from helios.identity.argon2_hasher import Argon2Hasher
from helios.identity.store import tables
from helios.kernel.clients import call_metadata
from helios.kernel.principal import AssertionVerifier, load_public_key
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2
from helios.proto.identity.v1 import identity_pb2

PASSWORD = "correct horse battery staple"
BAD_CREDENTIALS = "invalid e-mail or password"

OutboxEvents = Callable[[], Awaitable[list[tuple[str, events_pb2.AuditEvent]]]]
TableRows = Callable[[Any], Awaitable[list[Any]]]


def _email() -> str:
    return f"grace.{uuid.uuid4().hex[:10]}@example.com"


async def _sign_up(stub: Any, email: str) -> str:
    response = await stub.SignUp(
        identity_pb2.SignUpRequest(email=email, password=PASSWORD, display_name="Grace"),
        metadata=call_metadata(client_ip="203.0.113.1"),
        timeout=10,
    )
    user_id: str = response.user.user_id
    return user_id


async def test_a1_s1_sign_in_returns_opaque_token_stored_only_as_sha256(
    identity: Any,
    outbox_events: OutboxEvents,
    table_rows: TableRows,
    principal_keys: tuple[Path, Path],
) -> None:
    """A1/S1: sign-in returns an `hls_` token; the sessions row holds sha256(token) and never the
    token; ResolveSession names the user and session with a verifiable signed assertion."""
    stub = identity.stub()
    email = _email()
    user_id = await _sign_up(stub, email)

    signed_in = await stub.SignIn(
        identity_pb2.SignInRequest(email=email, password=PASSWORD),
        metadata=call_metadata(client_ip="198.51.100.20", user_agent="itest-browser/2.0"),
        timeout=10,
    )
    token = signed_in.session_token
    assert token.startswith("hls_")
    assert len(token) > 40
    assert signed_in.user.user_id == user_id
    assert signed_in.session.user_id == user_id
    assert signed_in.session.ip == "198.51.100.20"
    assert signed_in.session.user_agent == "itest-browser/2.0"

    sessions = await table_rows(tables.sessions)
    assert len(sessions) == 1
    stored = sessions[0]
    assert str(stored.id) == signed_in.session.session_id
    assert str(stored.user_id) == user_id
    assert stored.token_hash == hashlib.sha256(token.encode()).digest()
    assert len(stored.token_hash) == 32
    assert all(token not in str(value) for value in stored)
    assert token.encode() not in bytes(stored.token_hash)
    assert stored.revoked_at is None
    assert stored.expires_at > stored.created_at

    resolved = await stub.ResolveSession(
        identity_pb2.ResolveSessionRequest(session_token=token),
        metadata=call_metadata(client_ip="198.51.100.21", user_agent="itest-browser/2.0"),
        timeout=10,
    )
    assert resolved.principal.actor_type == principal_pb2.ACTOR_TYPE_USER
    assert resolved.principal.actor_id == user_id
    assert resolved.principal.session_id == signed_in.session.session_id
    assert resolved.principal.ip == "198.51.100.21"
    assert resolved.principal.user_agent == "itest-browser/2.0"
    assert resolved.user.user_id == user_id
    assert resolved.session.session_id == signed_in.session.session_id
    verifier = AssertionVerifier([load_public_key(principal_keys[1])])
    assert verifier.verify(resolved.assertion) == resolved.principal

    sign_ins = [event for _, event in await outbox_events() if event.action.endswith("signIn")]
    assert len(sign_ins) == 1
    event = sign_ins[0]
    assert event.action == "identity.user.signIn"
    assert event.outcome == events_pb2.AUDIT_OUTCOME_SUCCESS
    assert event.actor_id == user_id
    assert event.resource_type == "identity.session"
    assert event.resource_id == signed_in.session.session_id
    assert event.ip == "198.51.100.20"
    assert len(event.input_hash) == 64


async def test_a1_wrong_password_and_unknown_email_get_the_same_answer_and_are_audited(
    identity: Any, outbox_events: OutboxEvents, table_rows: TableRows
) -> None:
    """A1: a wrong password, an unknown address and a malformed address all get UNAUTHENTICATED
    with one identical message (no account enumeration); each attempt is audited as a failure
    and no session is opened."""
    stub = identity.stub()
    email = _email()
    user_id = await _sign_up(stub, email)
    attempts = [
        identity_pb2.SignInRequest(email=email, password="wrong password 123"),
        identity_pb2.SignInRequest(email=_email(), password=PASSWORD),
        identity_pb2.SignInRequest(email="not-an-address", password=PASSWORD),
    ]
    details: list[str | None] = []
    for attempt in attempts:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SignIn(attempt, metadata=call_metadata(client_ip="192.0.2.66"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        details.append(refused.value.details())
    assert details == [BAD_CREDENTIALS] * 3

    assert await table_rows(tables.sessions) == []
    failures = [event for _, event in await outbox_events() if event.action.endswith("signIn")]
    assert len(failures) == 3
    assert all(event.outcome == events_pb2.AUDIT_OUTCOME_FAILURE for event in failures)
    assert all(event.ip == "192.0.2.66" for event in failures)
    assert sorted(event.actor_id for event in failures) == sorted(["", "", user_id])
    known = next(event for event in failures if event.actor_id == user_id)
    assert known.resource_id == user_id
    assert known.actor_type == principal_pb2.ACTOR_TYPE_USER
    unknown = [event for event in failures if not event.actor_id]
    assert all(event.actor_type == principal_pb2.ACTOR_TYPE_SYSTEM for event in unknown)


async def test_a1_hash_parameters_upgraded_on_next_sign_in(
    start_identity: Any, table_rows: TableRows
) -> None:
    """A1: a hash made with old parameters is verified, then replaced by one with the current
    parameters during the sign-in; the next sign-in keeps it."""
    old = await start_identity(hasher=Argon2Hasher(time_cost=1, memory_kib=8192, parallelism=1))
    email = _email()
    user_id = await _sign_up(old.stub(), email)
    (before,) = await table_rows(tables.users)
    assert before.password_hash.startswith("$argon2id$v=19$m=8192,t=1,p=1$")

    new = await start_identity(hasher=Argon2Hasher(time_cost=2, memory_kib=16384, parallelism=2))
    signed_in = await new.stub().SignIn(
        identity_pb2.SignInRequest(email=email, password=PASSWORD), timeout=10
    )
    assert signed_in.user.user_id == user_id
    (after,) = await table_rows(tables.users)
    assert after.password_hash.startswith("$argon2id$v=19$m=16384,t=2,p=2$")
    assert after.password_hash != before.password_hash

    await new.stub().SignIn(identity_pb2.SignInRequest(email=email, password=PASSWORD), timeout=10)
    (again,) = await table_rows(tables.users)
    assert again.password_hash == after.password_hash

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await new.stub().SignIn(
            identity_pb2.SignInRequest(email=email, password="not the password"), timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
