"""Session resolution refusals over gRPC: unknown, empty and expired tokens (S1)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import grpc
import pytest

from helios.proto.identity.v1 import identity_pb2

PASSWORD = "correct horse battery staple"
SESSION_GONE = "session is invalid or has expired"


class _Clock:
    """A clock the test moves by hand (the service reads it for creation and expiry)."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


async def _resolve_refused(stub: Any, token: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ResolveSession(
            identity_pb2.ResolveSessionRequest(session_token=token), timeout=10
        )
    return refused.value


@pytest.mark.parametrize(
    "token", ["", "hls_" + "A" * 43, "not-a-token", "hls_" + uuid.uuid4().hex + "\u00e9"]
)
async def test_s1_resolve_unknown_token_is_unauthenticated(identity: Any, token: str) -> None:
    """S1: a token no session was issued for is refused."""
    error = await _resolve_refused(identity.stub(), token)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == SESSION_GONE


async def test_s1_resolve_expired_session_is_unauthenticated(start_identity: Any) -> None:
    """S1: a session resolves until its absolute expiry and is refused from then on."""
    clock = _Clock(dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC))
    server = await start_identity(clock=clock, session_ttl=dt.timedelta(minutes=5))
    stub = server.stub()
    email = f"hopper.{uuid.uuid4().hex[:10]}@example.com"
    await stub.SignUp(identity_pb2.SignUpRequest(email=email, password=PASSWORD), timeout=10)
    signed_in = await stub.SignIn(
        identity_pb2.SignInRequest(email=email, password=PASSWORD), timeout=10
    )
    assert signed_in.session.expires_at.ToDatetime(dt.UTC) == clock.now + dt.timedelta(minutes=5)
    token = signed_in.session_token

    clock.now += dt.timedelta(minutes=4, seconds=59)
    resolved = await stub.ResolveSession(
        identity_pb2.ResolveSessionRequest(session_token=token), timeout=10
    )
    assert resolved.principal.session_id == signed_in.session.session_id

    clock.now += dt.timedelta(seconds=1)
    error = await _resolve_refused(stub, token)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == SESSION_GONE
