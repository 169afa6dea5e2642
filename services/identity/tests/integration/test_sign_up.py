"""Sign-up over gRPC against real PostgreSQL: argon2id at rest, one audit event, refusals (A1)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from helios.identity.store import tables
from helios.kernel.canonical import canonical_hash
from helios.kernel.clients import call_metadata
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2
from helios.proto.identity.v1 import identity_pb2

PASSWORD = "correct horse battery staple"
EDGE = call_metadata(client_ip="203.0.113.7", user_agent="itest-browser/1.0")

OutboxEvents = Callable[[], Awaitable[list[tuple[str, events_pb2.AuditEvent]]]]
TableRows = Callable[[Any], Awaitable[list[Any]]]


def _email() -> str:
    return f"ada.{uuid.uuid4().hex[:10]}@Example.COM"


async def test_a1_sign_up_stores_argon2id_hash_and_audits_once(
    identity: Any, outbox_events: OutboxEvents, table_rows: TableRows
) -> None:
    """A1: the account is created, only an argon2id hash is stored, and exactly one outbox event
    names the new user with the edge's client address; its input hash omits the password."""
    email = _email()
    request = identity_pb2.SignUpRequest(email=email, password=PASSWORD, display_name="Ada")
    response = await identity.stub().SignUp(request, metadata=EDGE, timeout=10)

    local, domain = email.split("@")
    assert response.user.email == f"{local}@{domain.lower()}"
    assert response.user.display_name == "Ada"
    assert response.user.email_verified is False
    user_id = response.user.user_id
    assert uuid.UUID(user_id)

    users = await table_rows(tables.users)
    assert [str(row.id) for row in users] == [user_id]
    stored = users[0]
    assert stored.password_hash.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert all(PASSWORD not in str(value) for value in stored)

    events = await outbox_events()
    assert len(events) == 1
    subject, event = events[0]
    assert subject == "audit.identity.identity.user.signUp"
    assert event.action == "identity.user.signUp"
    assert event.actor_id == user_id
    assert event.actor_type == principal_pb2.ACTOR_TYPE_USER
    assert event.resource_type == "identity.user"
    assert event.resource_id == user_id
    assert event.outcome == events_pb2.AUDIT_OUTCOME_SUCCESS
    assert event.producer == "identity"
    assert event.ip == "203.0.113.7"
    assert event.user_agent == "itest-browser/1.0"
    assert uuid.UUID(event.event_id)
    assert event.HasField("occurred_at")
    assert dict(event.diff) == {"email": response.user.email, "display_name": "Ada"}
    assert PASSWORD not in event.SerializeToString().decode("utf-8", "replace")

    assert len(event.input_hash) == 64
    assert event.input_hash == canonical_hash(request)
    other_password = identity_pb2.SignUpRequest()
    other_password.CopyFrom(request)
    other_password.password = "a completely different secret"
    assert canonical_hash(other_password) == event.input_hash
    other_email = identity_pb2.SignUpRequest()
    other_email.CopyFrom(request)
    other_email.email = _email()
    assert canonical_hash(other_email) != event.input_hash


async def test_a1_sign_up_duplicate_email_already_exists_and_writes_nothing(
    identity: Any, outbox_events: OutboxEvents, table_rows: TableRows
) -> None:
    """A1: a second account with the same address (any case) is refused with ALREADY_EXISTS and
    neither a user row nor an audit event is added."""
    email = _email()
    stub = identity.stub()
    await stub.SignUp(
        identity_pb2.SignUpRequest(email=email, password=PASSWORD), metadata=EDGE, timeout=10
    )
    for again in (email, email.upper()):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SignUp(
                identity_pb2.SignUpRequest(email=again, password="another password 123"),
                metadata=EDGE,
                timeout=10,
            )
        assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert refused.value.details() == "an account with this e-mail already exists"

    assert len(await table_rows(tables.users)) == 1
    assert [event.action for _, event in await outbox_events()] == ["identity.user.signUp"]


@pytest.mark.parametrize(
    "email",
    [
        "",
        "not-an-email",
        "two@@example.com",
        "ada@localhost",
        "ada@example.123",
        ".ada@example.com",
    ],
)
async def test_a1_sign_up_invalid_email_is_invalid_argument_and_writes_nothing(
    identity: Any, outbox_events: OutboxEvents, table_rows: TableRows, email: str
) -> None:
    """A1: a malformed address is refused at the edge; no user row, no outbox row."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await identity.stub().SignUp(
            identity_pb2.SignUpRequest(email=email, password=PASSWORD), metadata=EDGE, timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() in {"email is required", "email is not a valid address"}
    assert await table_rows(tables.users) == []
    assert await outbox_events() == []


@pytest.mark.parametrize("password", ["", "short", "123456789"])
async def test_a1_sign_up_short_password_is_invalid_argument_and_writes_nothing(
    identity: Any, outbox_events: OutboxEvents, table_rows: TableRows, password: str
) -> None:
    """A1: passwords under 10 characters are refused before anything is hashed or stored."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await identity.stub().SignUp(
            identity_pb2.SignUpRequest(email=_email(), password=password),
            metadata=EDGE,
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "password must have at least 10 characters"
    assert await table_rows(tables.users) == []
    assert await outbox_events() == []
