"""Session lifetime over gRPC: the idle timeout on top of the absolute expiry, and last_seen_at
written at most once a minute (S1)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from helios.identity.domain.auth_config import AuthConfig
from helios.identity.service.bundle import StaticAuthConfig
from helios.identity.store import tables
from helios.proto.identity.v1 import identity_pb2

PASSWORD = "correct horse battery staple"
SESSION_GONE = "session is invalid or has expired"


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now


async def _signed_in(stub: Any) -> str:
    email = f"lovelace.{uuid.uuid4().hex[:10]}@example.com"
    await stub.SignUp(identity_pb2.SignUpRequest(email=email, password=PASSWORD), timeout=10)
    reply = await stub.SignIn(
        identity_pb2.SignInRequest(email=email, password=PASSWORD), timeout=10
    )
    return str(reply.session_token)


async def _resolve(stub: Any, token: str) -> Any:
    return await stub.ResolveSession(
        identity_pb2.ResolveSessionRequest(session_token=token), timeout=10
    )


async def _refused(stub: Any, token: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _resolve(stub, token)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert refused.value.details() == SESSION_GONE


async def test_s1_idle_session_ends_after_the_default_two_hours(start_identity: Any) -> None:
    """S1: with no deployment setting, a session unused for 2 hours is refused, although its
    12-hour absolute expiry is far away; one used within the window lives on."""
    clock = _Clock()
    stub = (await start_identity(clock=clock)).stub()
    idle, used = await _signed_in(stub), await _signed_in(stub)

    clock.now += dt.timedelta(hours=1, minutes=59)
    assert (await _resolve(stub, used)).session.user_id
    clock.now += dt.timedelta(minutes=1)

    await _refused(stub, idle)
    resolved = await _resolve(stub, used)
    assert resolved.session.last_seen_at.ToDatetime(dt.UTC) == clock.now
    assert resolved.session.expires_at.ToDatetime(dt.UTC) > clock.now + dt.timedelta(hours=9)


async def test_s1_idle_timeout_comes_from_the_auth_config_without_restart(
    start_identity: Any,
) -> None:
    """S1/C1: `session_idle_timeout_seconds` of the deployment's auth config replaces the default
    (10 minutes here): 9:59 idle passes, 10:00 is refused."""
    clock = _Clock()
    config = StaticAuthConfig(AuthConfig(session_idle_timeout_seconds=600))
    stub = (await start_identity(clock=clock, config=config)).stub()
    first, second = await _signed_in(stub), await _signed_in(stub)

    clock.now += dt.timedelta(minutes=9, seconds=59)
    await _resolve(stub, first)
    clock.now += dt.timedelta(seconds=1)
    await _refused(stub, second)
    clock.now += dt.timedelta(minutes=9, seconds=58)
    await _resolve(stub, first)  # seen 9:59 ago: still live


async def test_s1_last_seen_written_at_most_once_a_minute(
    start_identity: Any, table_rows: Callable[[Any], Awaitable[list[Any]]]
) -> None:
    """S1: resolving moves last_seen_at only when the stored value is a minute old or more, so
    the hot path stays a read."""
    clock = _Clock()
    stub = (await start_identity(clock=clock)).stub()
    token = await _signed_in(stub)
    opened = clock.now

    async def stored() -> dt.datetime:
        rows = await table_rows(tables.sessions)
        return next(r.last_seen_at for r in rows if r.created_at == opened)

    clock.now += dt.timedelta(seconds=59)
    await _resolve(stub, token)
    assert await stored() == opened
    clock.now += dt.timedelta(seconds=1)
    await _resolve(stub, token)
    assert await stored() == opened + dt.timedelta(minutes=1)
    clock.now += dt.timedelta(seconds=30)
    await _resolve(stub, token)
    assert await stored() == opened + dt.timedelta(minutes=1)
