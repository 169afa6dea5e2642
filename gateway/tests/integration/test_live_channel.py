"""The `/api/ws` live channel over wss (E2): TLS 1.3 with a test CA, session and Origin checks,
the caller's audit rows as JSON frames, and how it closes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import uuid
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from helios.audit.domain.events import Incoming
from helios.gateway.app import create_app
from helios.gateway.auth.cache_cookie import CACHE_COOKIE, SessionCache
from helios.gateway.cookies import SESSION_COOKIE
from helios.gateway.routes.live import (
    CLOSE_CLIENT_MESSAGE,
    CLOSE_REAUTHENTICATE,
    CLOSE_UPSTREAM_ERROR,
)
from helios.gateway.settings import GatewaySettings
from helios.kernel.principal import AssertionSigner, load_private_key
from helios.kernel.runtime import verifier_from
from helios.kernel.testing.servers import free_port
from helios.kernel.tls import CertFiles
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2

# Fixture types live in conftest.py, which tests cannot import (no packages): Any stands in.
ObservedService = Any  # conftest.ObservedService: the real AuditService, observed
RunningGateway = Any  # conftest.RunningGateway: port, settings, origin, ws_url
StartGateway = Any  # conftest.StartGateway: audit target -> a started RunningGateway


@pytest.fixture
def trust_test_ca(pki: dict[str, CertFiles]) -> ssl.SSLContext:
    """A client TLS context that trusts only the test CA."""
    return ssl.create_default_context(cafile=str(pki["gateway"].ca))


def _event(actor_id: str, action: str) -> events_pb2.AuditEvent:
    event = events_pb2.AuditEvent(
        event_id=str(uuid.uuid4()),
        org_id=str(uuid.uuid4()),
        actor_type=principal_pb2.ACTOR_TYPE_USER,
        actor_id=actor_id,
        action=action,
        resource_type="identity.user",
        resource_id=actor_id,
        producer="identity",
        outcome=events_pb2.AUDIT_OUTCOME_SUCCESS,
    )
    event.occurred_at.FromDatetime(dt.datetime(2026, 2, 3, 4, 5, 6, tzinfo=dt.UTC))
    return event


async def _ingest(service: ObservedService, events: list[events_pb2.AuditEvent], seq: int) -> None:
    batch = [
        Incoming("audit.itest.x", e.SerializeToString(), seq + i) for i, e in enumerate(events)
    ]
    assert await service.ingest(batch) == len(events)


def _session_cookie(
    gateway: RunningGateway,
    principal_keys: tuple[Path, Path],
    actor_id: str,
    ttl: dt.timedelta = dt.timedelta(seconds=60),
) -> str:
    """A Cookie header with a session token and a valid cache cookie for it (what the gateway
    sets after identity.ResolveSession), so the gateway never has to call identity."""
    signer = AssertionSigner(load_private_key(principal_keys[0]), ttl)
    principal = principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_USER, actor_id=actor_id, session_id=str(uuid.uuid4())
    )
    settings = gateway.settings
    cache = SessionCache(settings.cookie_key_file.read_bytes(), verifier_from(settings))
    token = f"itest-session-{uuid.uuid4()}"
    return f"{SESSION_COOKIE}={token}; {CACHE_COOKIE}={cache.seal(token, signer.sign(principal))}"


async def _frame(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(10):
        raw = await ws.recv()
    assert isinstance(raw, str), "frames are JSON text"
    frame: dict[str, Any] = json.loads(raw)
    return frame


async def _closed_with(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Wait for the server to close; (code, reason)."""
    async with asyncio.timeout(15):
        await ws.wait_closed()
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    assert ws.close_code is not None
    return ws.close_code, ws.close_reason


async def _leave(ws: ClientConnection, service: ObservedService, turns: asyncio.Lock) -> None:
    """Close from the client while the audit server cannot be inside a query, and wait until
    the gateway has cancelled the watch stream."""
    async with turns:
        await ws.close()
        async with asyncio.timeout(10):
            await service.none_open.wait()
    assert service.open_watches == 0


async def _refusal(gateway: RunningGateway, context: ssl.SSLContext, **kwargs: Any) -> Any:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(gateway.ws_url, ssl=context, open_timeout=10, **kwargs):
            pass
    return refused.value.response


def test_e2_the_app_serves_the_live_channel(gateway_settings: GatewaySettings) -> None:
    """E2: create_app mounts `/api/ws` as a WebSocket route (the tests below go through it)."""

    def no_upstream() -> Any:
        raise AssertionError("not started")

    app = create_app(gateway_settings, no_upstream)
    live = [route for route in app.routes if getattr(route, "path", "") == "/api/ws"]
    assert [type(route).__name__ for route in live] == ["WebSocketRoute"]


async def test_e2_wss_with_the_test_ca_streams_the_callers_new_audit_rows(
    gateway: RunningGateway,
    audit_service: ObservedService,
    principal_keys: tuple[Path, Path],
    trust_test_ca: ssl.SSLContext,
    turns: asyncio.Lock,
) -> None:
    """E2: a signed-in browser on the gateway's own origin opens `/api/ws` over TLS 1.3 (trusting
    the test CA) and receives the rows it causes after connecting, in order, as JSON frames;
    rows stored before it connected and other actors' rows never arrive."""
    me, someone = str(uuid.uuid4()), str(uuid.uuid4())
    await _ingest(audit_service, [_event(me, "itest.before")], 10)
    headers = {"Origin": gateway.origin, "Cookie": _session_cookie(gateway, principal_keys, me)}
    async with connect(
        gateway.ws_url, ssl=trust_test_ca, additional_headers=headers, open_timeout=10
    ) as ws:
        assert ws.transport.get_extra_info("ssl_object").version() == "TLSv1.3"
        async with asyncio.timeout(10):
            await audit_service.log.head_read.wait()
        mine = [_event(me, "itest.first"), _event(me, "itest.second")]
        await _ingest(audit_service, [mine[0], _event(someone, "itest.theirs"), mine[1]], 100)

        first, second = await _frame(ws), await _frame(ws)
        assert first["type"] == second["type"] == "audit.event"
        assert [first["record"]["event"]["event_id"], second["record"]["event"]["event_id"]] == [
            mine[0].event_id,
            mine[1].event_id,
        ]
        assert int(first["sequence"]) < int(second["sequence"])
        record = first["record"]
        assert record["event"]["actor_id"] == me
        assert record["event"]["action"] == "itest.first"
        assert record["event"]["actor_type"] == "ACTOR_TYPE_USER"
        assert record["event"]["outcome"] == "AUDIT_OUTCOME_SUCCESS"
        assert record["event"]["occurred_at"] == "2026-02-03T04:05:06Z"
        assert record["stream_sequence"] == "100"
        assert record["recorded_at"]

        later = _event(me, "itest.later")
        await _ingest(audit_service, [_event(someone, "itest.theirs2"), later], 200)
        third = await _frame(ws)
        assert third["record"]["event"]["event_id"] == later.event_id
        await _leave(ws, audit_service, turns)


async def test_e2_an_allowed_origin_resumes_after_a_sequence(
    gateway: RunningGateway,
    audit_service: ObservedService,
    principal_keys: tuple[Path, Path],
    trust_test_ca: ssl.SSLContext,
    turns: asyncio.Lock,
) -> None:
    """E2: an origin from allowed_origins is admitted, and `?after_sequence=` replays what the
    caller missed since that position (a reconnecting client loses nothing)."""
    me = str(uuid.uuid4())
    rows = [_event(me, f"itest.r{i}") for i in range(3)]
    await _ingest(audit_service, rows, 300)
    (allowed,) = gateway.settings.allowed_origins
    headers = {"Origin": allowed, "Cookie": _session_cookie(gateway, principal_keys, me)}
    async with connect(
        f"{gateway.ws_url}?after_sequence=1", ssl=trust_test_ca, additional_headers=headers
    ) as ws:
        replay = [await _frame(ws) for _ in rows]
        assert [f["record"]["event"]["action"] for f in replay] == [
            "itest.r0",
            "itest.r1",
            "itest.r2",
        ]
        await _leave(ws, audit_service, turns)
    async with connect(
        f"{gateway.ws_url}?after_sequence={replay[0]['sequence']}",
        ssl=trust_test_ca,
        additional_headers=headers,
    ) as ws:
        resumed = [await _frame(ws) for _ in range(2)]
        assert [f["record"]["event"]["action"] for f in resumed] == ["itest.r1", "itest.r2"]
        await _leave(ws, audit_service, turns)
    assert not audit_service.log.head_read.is_set()


async def test_e2_without_a_session_the_handshake_is_refused(
    gateway: RunningGateway, audit_service: ObservedService, trust_test_ca: ssl.SSLContext
) -> None:
    """E2: no session cookie -> HTTP 401 with the edge's JSON error, no socket, no watch."""
    response = await _refusal(gateway, trust_test_ca, additional_headers={"Origin": gateway.origin})
    assert response.status_code == 401
    assert json.loads(response.body)["error"]["code"] == "UNAUTHENTICATED"
    assert audit_service.open_watches == 0
    assert not audit_service.log.head_read.is_set()


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://localhost:{port}", "null", None],
    ids=["foreign", "same-host-other-scheme", "opaque", "missing"],
)
async def test_e2_a_foreign_or_missing_origin_is_refused(
    gateway: RunningGateway,
    audit_service: ObservedService,
    principal_keys: tuple[Path, Path],
    trust_test_ca: ssl.SSLContext,
    origin: str | None,
) -> None:
    """E2: a signed-in session from another origin (cross-site WebSocket hijacking), or with no
    Origin at all, is refused with HTTP 403 before anything is streamed."""
    headers = {"Cookie": _session_cookie(gateway, principal_keys, str(uuid.uuid4()))}
    if origin is not None:
        headers["Origin"] = origin.format(port=gateway.port)
    response = await _refusal(gateway, trust_test_ca, additional_headers=headers)
    assert response.status_code == 403
    assert json.loads(response.body)["error"]["code"] == "PERMISSION_DENIED"
    assert audit_service.open_watches == 0
    assert not audit_service.log.head_read.is_set()


@pytest.mark.parametrize(
    "query", ["after_sequence=abc", "after_sequence=9223372036854775808", f"org_id={'x' * 65}"]
)
async def test_e2_bad_query_parameters_are_refused(
    gateway: RunningGateway,
    principal_keys: tuple[Path, Path],
    trust_test_ca: ssl.SSLContext,
    query: str,
) -> None:
    """E2: a cursor that is not a log position or an over-long org id -> HTTP 400."""
    headers = {"Origin": gateway.origin, "Cookie": _session_cookie(gateway, principal_keys, "u")}
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            f"{gateway.ws_url}?{query}", ssl=trust_test_ca, additional_headers=headers
        ):
            pass
    assert refused.value.response.status_code == 400
    assert json.loads(refused.value.response.body)["error"]["code"] == "INVALID_ARGUMENT"


async def test_e2_a_client_that_does_not_trust_the_test_ca_refuses_the_gateway(
    gateway: RunningGateway,
) -> None:
    """E2: the wss certificate verifies only against the test CA."""
    with pytest.raises(ssl.SSLCertVerificationError):
        async with connect(gateway.ws_url, ssl=ssl.create_default_context(), open_timeout=10):
            pass


async def test_e2_a_client_message_closes_the_channel(
    gateway: RunningGateway,
    audit_service: ObservedService,
    principal_keys: tuple[Path, Path],
    trust_test_ca: ssl.SSLContext,
    turns: asyncio.Lock,
) -> None:
    """E2: the channel is server-to-client; a message from the client closes it with 1008 and
    the watch stream behind it is cancelled."""
    headers = {"Origin": gateway.origin, "Cookie": _session_cookie(gateway, principal_keys, "u")}
    async with connect(gateway.ws_url, ssl=trust_test_ca, additional_headers=headers) as ws:
        async with asyncio.timeout(10):
            await audit_service.log.head_read.wait()
        async with turns:  # the server is not inside a query when the stream is cancelled
            await ws.send('{"subscribe": "everything"}')
            code, _ = await _closed_with(ws)
            async with asyncio.timeout(10):
                await audit_service.none_open.wait()
    assert code == CLOSE_CLIENT_MESSAGE


async def test_e2_the_channel_closes_when_the_callers_assertion_runs_out(
    gateway: RunningGateway,
    audit_service: ObservedService,
    principal_keys: tuple[Path, Path],
    trust_test_ca: ssl.SSLContext,
    turns: asyncio.Lock,
) -> None:
    """E2: a socket lives no longer than the signed assertion it was opened with (plus the
    verifiers' clock-skew allowance), so a revoked session loses the tail; it closes with 4401
    and the client reconnects, which re-checks the session."""
    # expired 4 s ago: still inside the verifiers' 5 s skew, so the channel has ~2 s to live
    cookie = _session_cookie(gateway, principal_keys, "u", ttl=dt.timedelta(seconds=-4))
    headers = {"Origin": gateway.origin, "Cookie": cookie}
    async with connect(gateway.ws_url, ssl=trust_test_ca, additional_headers=headers) as ws:
        async with asyncio.timeout(10):
            await audit_service.log.head_read.wait()
        async with turns:
            code, reason = await _closed_with(ws)
            async with asyncio.timeout(10):
                await audit_service.none_open.wait()
    assert code == CLOSE_REAUTHENTICATE
    assert reason == "session re-check due; reconnect"


async def test_e2_an_audit_failure_becomes_an_error_frame_and_1011(
    start_gateway: StartGateway, principal_keys: tuple[Path, Path], trust_test_ca: ssl.SSLContext
) -> None:
    """E2: when the audit service cannot be reached the client gets an error frame (the edge's
    error body) and close code 1011, not a silent hang."""
    gateway = await start_gateway(f"localhost:{free_port()}")
    headers = {"Origin": gateway.origin, "Cookie": _session_cookie(gateway, principal_keys, "u")}
    async with connect(gateway.ws_url, ssl=trust_test_ca, additional_headers=headers) as ws:
        frame = await _frame(ws)
        code, _ = await _closed_with(ws)
    assert frame == {
        "type": "error",
        "error": {
            "code": "UNAVAILABLE",
            "status": 503,
            "message": "a backend service is unavailable; retry later",
        },
    }
    assert code == CLOSE_UPSTREAM_ERROR
