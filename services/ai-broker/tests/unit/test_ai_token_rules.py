"""The rules of a delegation (I1, I2): who may delegate, purpose, lifetime, a narrowing never
beyond the user's grants, and the pages of a listing."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from helios.ai_broker.domain.delegation import (
    DEFAULT_TTL,
    MAX_NARROWING,
    beyond_grants,
    require_not_ai,
    require_person,
    session_lifetime,
    validate_narrowing,
    validate_purpose,
)
from helios.ai_broker.domain.session_pages import SessionCursor, page_size
from helios.kernel.errors import InvalidArgumentError, PermissionDeniedError
from helios.proto.common.v1 import principal_pb2

USER = principal_pb2.ACTOR_TYPE_USER


def _principal(**fields: object) -> principal_pb2.Principal:
    base: dict[str, object] = {
        "actor_type": USER,
        "actor_id": str(uuid.uuid4()),
        "org_id": str(uuid.uuid4()),
        "session_id": str(uuid.uuid4()),
    }
    return principal_pb2.Principal(**{**base, **fields})  # type: ignore[arg-type]


def test_i1_only_a_person_in_a_user_session_delegates() -> None:
    """I1: a person in a session may; an AI, an API key, an impersonator, a principal without a
    session and a system actor may not."""
    require_person(_principal())
    refused = [
        _principal(actor_type=principal_pb2.ACTOR_TYPE_AI),
        _principal(session_id="apikey:" + str(uuid.uuid4())),
        _principal(impersonator_id=str(uuid.uuid4())),
        _principal(session_id=""),
        _principal(actor_type=principal_pb2.ACTOR_TYPE_SYSTEM),
    ]
    for principal in refused:
        with pytest.raises(PermissionDeniedError):
            require_person(principal)
    with pytest.raises(PermissionDeniedError, match="an AI cannot manage"):
        require_not_ai(_principal(actor_type=principal_pb2.ACTOR_TYPE_AI))
    require_not_ai(_principal(session_id="apikey:x"))


def test_i1_lifetime_defaults_to_24h_and_never_exceeds_it() -> None:
    """I1: absent or zero means 24 h; 1 min .. 24 h accepted; longer, shorter or negative
    refused."""
    assert session_lifetime(None) == DEFAULT_TTL == dt.timedelta(hours=24)
    assert session_lifetime(dt.timedelta(0)) == DEFAULT_TTL
    assert session_lifetime(dt.timedelta(hours=1)) == dt.timedelta(hours=1)
    assert session_lifetime(dt.timedelta(hours=24)) == dt.timedelta(hours=24)
    for bad in (
        dt.timedelta(hours=24, seconds=1),
        dt.timedelta(days=7),
        dt.timedelta(seconds=59),
        dt.timedelta(seconds=-5),
    ):
        with pytest.raises(InvalidArgumentError) as refused:
            session_lifetime(bad)
        assert refused.value.field == "ttl"


def test_i1_purpose_is_required_and_bounded() -> None:
    """I1: the purpose is trimmed, 1..500 printable characters."""
    assert validate_purpose("  triage my inbox ") == "triage my inbox"
    for bad in ("", "   ", "x" * 501, "line\nbreak"):
        with pytest.raises(InvalidArgumentError):
            validate_purpose(bad)


def test_i2_narrowing_entries_are_keys_with_optional_scope() -> None:
    """I2: distinct sorted `<module>.<entity>.<verb>[:own|:team|:any]`; no wildcard, no other
    scope, at most 100."""
    assert validate_narrowing(
        ["recruitment.candidate.list:own", "recruitment.offer.send", "recruitment.offer.send"]
    ) == ("recruitment.candidate.list:own", "recruitment.offer.send")
    assert validate_narrowing([]) == ()
    for bad in (
        "recruitment.*.list",
        "recruitment.candidate",
        "recruitment.candidate.list:all",
        "Recruitment.candidate.list",
        "recruitment.candidate.list:",
    ):
        with pytest.raises(InvalidArgumentError):
            validate_narrowing([bad])
    with pytest.raises(InvalidArgumentError):
        validate_narrowing([f"a.b.c{i}" for i in range(MAX_NARROWING + 1)])


def test_i2_narrowing_never_reaches_beyond_the_users_grants() -> None:
    """I2: a key the user holds at no scope, or a scope wider than their widest grant of it, is
    beyond; the same or a narrower scope, or no scope, is within."""
    grants = {("recruitment.candidate.list", "team"), ("recruitment.offer.send", "own")}
    within = [
        "recruitment.candidate.list",
        "recruitment.candidate.list:own",
        "recruitment.candidate.list:team",
        "recruitment.offer.send:own",
    ]
    assert beyond_grants(within, grants) == []
    assert beyond_grants(
        [
            "recruitment.candidate.list:any",
            "recruitment.offer.send:team",
            "identity.apiKey.create",
        ],
        grants,
    ) == ["recruitment.candidate.list:any", "recruitment.offer.send:team", "identity.apiKey.create"]
    assert beyond_grants(["a.b.c:any"], {("a.b.c", "own"), ("a.b.c", "any")}) == []


def test_i1_listing_pages_round_trip_their_cursor() -> None:
    """I1: page size 0 means 50, 1..500 accepted; a cursor survives its token, a forged one is
    refused."""
    assert page_size(0) == 50
    assert page_size(500) == 500
    for bad in (-1, 501):
        with pytest.raises(InvalidArgumentError):
            page_size(bad)
    cursor = SessionCursor(dt.datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC), uuid.uuid4())
    assert SessionCursor.parse(cursor.token()) == cursor
    assert SessionCursor.parse("") is None
    for bad in ("abc", "1." + "g" * 32, "9" * 18 + "." + "0" * 32, "1.2"):
        with pytest.raises(InvalidArgumentError):
            SessionCursor.parse(bad)
