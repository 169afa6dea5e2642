"""ListEvents over gRPC with mutual TLS and signed principal assertions (L1)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from helios.audit.domain.events import Incoming
from helios.audit.service import AuditService
from helios.kernel.clients import call_metadata
from helios.kernel.principal import AssertionSigner
from helios.proto.audit.v1 import audit_pb2, events_pb2
from helios.proto.common.v1 import principal_pb2

MakeEvent = Callable[..., events_pb2.AuditEvent]


def _as(signer: AssertionSigner, actor_id: str) -> Any:
    principal = principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_USER, actor_id=actor_id, session_id=str(uuid.uuid4())
    )
    return call_metadata(assertion=signer.sign(principal))


async def _ingest_one_by_one(
    service: AuditService, events: list[events_pb2.AuditEvent], first_seq: int
) -> None:
    for offset, event in enumerate(events):
        assert await service.ingest(
            [Incoming("audit.itest.x", event.SerializeToString(), first_seq + offset)]
        )


async def test_l1_list_events_returns_only_the_callers_rows_newest_first_with_paging(
    audit_server: Any,
    audit_service: AuditService,
    signer: AssertionSigner,
    make_event: MakeEvent,
) -> None:
    """L1: a principal sees only rows where it is the actor, newest first, paged by
    next_page_token; asking for another actor's rows does not widen the view."""
    actor_x, actor_y = str(uuid.uuid4()), str(uuid.uuid4())
    mine = [make_event(actor_id=actor_x, action=f"itest.step{i}") for i in range(5)]
    theirs = [make_event(actor_id=actor_y) for _ in range(3)]
    await _ingest_one_by_one(audit_service, [mine[0], theirs[0], mine[1], mine[2]], 100)
    await _ingest_one_by_one(audit_service, [theirs[1], mine[3], theirs[2], mine[4]], 200)

    seen: list[audit_pb2.AuditRecord] = []
    page_sizes: list[int] = []
    token = ""
    for _ in range(10):
        response = await audit_server.stub.ListEvents(
            audit_pb2.ListEventsRequest(page_size=2, page_token=token),
            metadata=_as(signer, actor_x),
            timeout=10,
        )
        seen.extend(response.records)
        page_sizes.append(len(response.records))
        token = response.next_page_token
        if not token:
            break
    assert page_sizes == [2, 2, 1]
    assert [r.event.event_id for r in seen] == [e.event_id for e in reversed(mine)]
    assert all(r.event.actor_id == actor_x for r in seen)
    assert [r.stream_sequence for r in seen] == [203, 201, 103, 102, 100]
    newest = seen[0]
    assert newest.event.action == "itest.step4"
    assert newest.event.input_hash == mine[4].input_hash
    assert newest.event.ip == mine[4].ip
    assert newest.event.actor_type == principal_pb2.ACTOR_TYPE_USER
    assert newest.event.outcome == events_pb2.AUDIT_OUTCOME_SUCCESS
    assert newest.event.occurred_at == mine[4].occurred_at
    assert dict(newest.event.diff) == dict(mine[4].diff)
    assert newest.HasField("recorded_at")

    everything = await audit_server.stub.ListEvents(
        audit_pb2.ListEventsRequest(actor_id=actor_y, page_size=500),
        metadata=_as(signer, actor_x),
        timeout=10,
    )
    assert {r.event.actor_id for r in everything.records} == {actor_x}
    assert everything.next_page_token == ""

    filtered = await audit_server.stub.ListEvents(
        audit_pb2.ListEventsRequest(action="itest.step2"),
        metadata=_as(signer, actor_x),
        timeout=10,
    )
    assert [r.event.event_id for r in filtered.records] == [mine[2].event_id]

    stranger = await audit_server.stub.ListEvents(
        audit_pb2.ListEventsRequest(), metadata=_as(signer, str(uuid.uuid4())), timeout=10
    )
    assert list(stranger.records) == []
    assert stranger.next_page_token == ""


async def test_l1_list_events_without_assertion_is_unauthenticated(audit_server: Any) -> None:
    """L1: reading the log needs a principal; the caller's mTLS identity alone is not one."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await audit_server.stub.ListEvents(audit_pb2.ListEventsRequest(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert refused.value.details() == "this call needs an authenticated principal"


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"page_size": 501}, "page_size"),
        ({"page_size": -1}, "page_size"),
        ({"page_token": "abc"}, "page_token"),
        ({"page_token": "99999999999999999999"}, "page_token"),
    ],
)
async def test_l1_list_events_out_of_range_paging_is_invalid_argument(
    audit_server: Any, signer: AssertionSigner, request_fields: dict[str, Any], field: str
) -> None:
    """L1: page sizes above 500 (or negative) and cursors that are not log positions are
    refused with INVALID_ARGUMENT."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await audit_server.stub.ListEvents(
            audit_pb2.ListEventsRequest(**request_fields),
            metadata=_as(signer, str(uuid.uuid4())),
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (refused.value.details() or "")
