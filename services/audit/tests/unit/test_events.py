"""Reading audit events off the stream and the ListEvents filter (L1, L3)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest
from google.protobuf import struct_pb2

from helios.audit.domain.events import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    EventQuery,
    Incoming,
    parse_event,
)
from helios.kernel.errors import InvalidArgumentError
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2

pytestmark = pytest.mark.unit

OCCURRED = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _event(**overrides: object) -> events_pb2.AuditEvent:
    event = events_pb2.AuditEvent(
        event_id=str(uuid.uuid4()),
        action="identity.user.signUp",
        actor_type=principal_pb2.ACTOR_TYPE_USER,
        actor_id="user-1",
        session_id="sess-1",
        input_hash="a" * 64,
        output_hash="b" * 64,
        ip="203.0.113.7",
        user_agent="pytest",
        producer="identity",
        outcome=events_pb2.AUDIT_OUTCOME_SUCCESS,
        diff=struct_pb2.Struct(fields={"email": struct_pb2.Value(string_value="a@b.io")}),
    )
    event.occurred_at.FromDatetime(OCCURRED)
    for name, value in overrides.items():
        if value is None:
            event.ClearField(name)
        else:
            setattr(event, name, value)
    return event


def test_l1_well_formed_event_is_read_back_whole() -> None:
    sent = _event()
    received = parse_event(sent.SerializeToString())
    assert received == sent
    assert received.occurred_at.ToDatetime(dt.UTC) == OCCURRED
    assert received.diff["email"] == "a@b.io"


def test_l3_garbage_bytes_refused() -> None:
    with pytest.raises(ValueError, match="not an AuditEvent"):
        parse_event(b"\xff\xfe\x00garbage")


@pytest.mark.parametrize(
    "event_id", ["", "42", "not-a-uuid", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"]
)
def test_l1_event_without_uuid_id_refused(event_id: str) -> None:
    with pytest.raises(ValueError, match="event_id is not a UUID"):
        parse_event(_event(event_id=event_id).SerializeToString())


def test_l1_event_without_action_refused() -> None:
    with pytest.raises(ValueError, match="action is empty"):
        parse_event(_event(action="").SerializeToString())


def test_l1_event_without_time_refused() -> None:
    with pytest.raises(ValueError, match="occurred_at is missing"):
        parse_event(_event(occurred_at=None).SerializeToString())


def test_l3_empty_message_refused() -> None:
    with pytest.raises(ValueError, match="event_id is not a UUID"):
        parse_event(b"")


def test_l3_incoming_message_is_immutable() -> None:
    incoming = Incoming(subject="audit.identity.signUp", data=b"x", stream_seq=7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        incoming.stream_seq = 8  # type: ignore[misc]
    assert incoming.stream_seq == 7


@pytest.mark.parametrize(
    ("page_size", "page_token", "expected"),
    [
        (0, "", (DEFAULT_PAGE_SIZE, 0)),
        (1, "", (1, 0)),
        (MAX_PAGE_SIZE, "", (MAX_PAGE_SIZE, 0)),
        (20, "12345", (20, 12345)),
        (20, "9223372036854775807", (20, 9223372036854775807)),
    ],
)
def test_l2_page_and_cursor_read_from_request(
    page_size: int, page_token: str, expected: tuple[int, int]
) -> None:
    assert EventQuery.page(page_size, page_token) == expected


@pytest.mark.parametrize("page_size", [-1, MAX_PAGE_SIZE + 1, 10_000])
def test_l2_page_size_out_of_range_refused(page_size: int) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        EventQuery.page(page_size, "")
    assert refused.value.field == "page_size"


@pytest.mark.parametrize("page_token", ["abc", "-5", "1.5", " 12", "1" * 20, "0x10"])
def test_l2_malformed_page_token_refused(page_token: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        EventQuery.page(10, page_token)
    assert refused.value.field == "page_token"


def test_l2_default_query_is_newest_first_page() -> None:
    query = EventQuery()
    assert query.page_size == DEFAULT_PAGE_SIZE
    assert query.before_seq == 0
    assert (query.actor_id, query.org_id, query.action) == ("", "", "")
