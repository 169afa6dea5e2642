"""Invocation rules (I3, I4): the server-rendered summary, canonical numbers, schema refusals,
the person who may decide, and the once-only state changes of a parked invocation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid

import pytest

from helios.ai_broker.domain.hashing import json_hash, whole_numbers
from helios.ai_broker.domain.invocations import (
    MAX_SUMMARY_CHARS,
    MAX_VALUE_CHARS,
    confirmed,
    error_for_target,
    expired,
    failed,
    is_overdue,
    new_confirmation,
    rejected,
    render_summary,
    require_delegator,
    succeeded,
    validate_input,
)
from helios.ai_broker.domain.model import Invocation, InvocationState
from helios.kernel.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
)
from helios.proto.common.v1 import principal_pb2

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
USER = str(uuid.uuid4())
OFFER_SCHEMA = {
    "type": "object",
    "properties": {
        "candidate_id": {"type": "string", "minLength": 1},
        "salary": {"type": "integer", "exclusiveMinimum": 0},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    },
    "required": ["candidate_id", "salary", "currency"],
    "additionalProperties": False,
}


def parked(nonce: str = "the-nonce") -> Invocation:
    data = {"candidate_id": "cand-1", "salary": 90000, "currency": "EUR"}
    return Invocation(
        id=uuid.uuid4(),
        org_id=str(uuid.uuid4()),
        ai_session_id=uuid.uuid4(),
        user_id=USER,
        action="recruitment.offer.send",
        state=InvocationState.PENDING_CONFIRMATION,
        input=data,
        input_hash=json_hash(data),
        dangerous=True,
        decision_id="d-1",
        created_at=NOW,
        confirmation_hash=hashlib.sha256(nonce.encode()).digest(),
        confirmation_expires_at=NOW + dt.timedelta(minutes=15),
    )


def person(**fields: object) -> principal_pb2.Principal:
    values: dict[str, object] = {
        "actor_type": principal_pb2.ACTOR_TYPE_USER,
        "actor_id": USER,
        "org_id": "org",
        "session_id": str(uuid.uuid4()),
        **fields,
    }
    return principal_pb2.Principal(**values)  # type: ignore[arg-type]


def test_i3_summary_is_rendered_from_the_template_and_the_input_only() -> None:
    summary = render_summary(
        "Send an offer of {salary} {currency} to candidate {candidate_id}",
        {"candidate_id": "cand-1", "salary": 90000.0, "currency": "EUR", "note": "ignored"},
    )
    assert summary == 'Send an offer of 90000 "EUR" to candidate "cand-1"'


def test_i3_summary_values_cannot_reshape_the_text_a_person_reads() -> None:
    summary = render_summary(
        "Pay {who} {amount}",
        {"who": 'Bob"\nApproved by the CFO: pay \u202eEve', "amount": [1, {"b": True}]},
    )
    assert "\n" not in summary
    assert "\u202e" not in summary
    assert summary == 'Pay "Bob\\"\\nApproved by the CFO: pay \\u202eEve" [1,{"b":true}]'


def test_i3_summary_marks_missing_fields_and_cuts_long_values_and_text() -> None:
    long = "x" * (MAX_VALUE_CHARS + 50)
    summary = render_summary("To {who} about {what}", {"who": long})
    assert summary.endswith("about (not given)")
    assert '"' + "x" * MAX_VALUE_CHARS + '… (cut)"' in summary
    assert len(render_summary("{a}" * 20, {"a": long})) <= MAX_SUMMARY_CHARS + len("… (cut)")
    assert render_summary("{a} {b} {c}", {"a": None, "b": False, "c": 2.5}) == "null false 2.5"
    assert render_summary("{0} {a.b} {{a}}", {"a": 1}) == "{0} {a.b} {1}"


def test_i4_whole_numbers_hash_as_the_json_a_client_sent() -> None:
    from_struct = {"salary": 90000.0, "rate": 1.5, "items": [1.0, {"n": -3.0}], "big": 2.0**60}
    plain = whole_numbers(from_struct)
    assert plain == {"salary": 90000, "rate": 1.5, "items": [1, {"n": -3}], "big": 2.0**60}
    assert isinstance(plain["salary"], int)
    assert json_hash(plain) == json_hash(
        {"big": 2.0**60, "items": [1, {"n": -3}], "rate": 1.5, "salary": 90000}
    )


def test_i2_input_is_validated_against_the_action_schema() -> None:
    validate_input(OFFER_SCHEMA, {"candidate_id": "c", "salary": 1, "currency": "EUR"})
    with pytest.raises(InvalidArgumentError) as caught:
        validate_input(
            OFFER_SCHEMA, {"candidate_id": "", "salary": "lots", "currency": "eur", "x": 1}
        )
    assert caught.value.field == "input"
    message = caught.value.message
    for fragment in ("candidate_id:", "salary:", "currency:", "(input): Additional"):
        assert fragment in message
    with pytest.raises(InvalidArgumentError, match="required property"):
        validate_input(OFFER_SCHEMA, {})


def test_i3_only_the_delegating_person_in_a_session_of_their_own_decides() -> None:
    require_delegator(person(), USER)
    refusals = {
        "an AI cannot decide": person(actor_type=principal_pb2.ACTOR_TYPE_AI),
        "only a person in a user session": person(session_id=""),
        "an API key cannot": person(session_id="apikey:" + str(uuid.uuid4())),
        "while impersonating": person(impersonator_id=str(uuid.uuid4())),
        "only the person who delegated": person(actor_id=str(uuid.uuid4())),
        "only a person": person(actor_type=principal_pb2.ACTOR_TYPE_SYSTEM),
    }
    for reason, principal in refusals.items():
        with pytest.raises(PermissionDeniedError, match=reason):
            require_delegator(principal, USER)


def test_i3_confirmation_needs_the_nonce_and_the_parked_input_hash() -> None:
    nonce, nonce_hash = new_confirmation()
    assert len(nonce) == 43
    assert nonce_hash == hashlib.sha256(nonce.encode()).digest()
    invocation = dataclasses.replace(parked(), confirmation_hash=nonce_hash)
    with pytest.raises(PermissionDeniedError, match="confirmation_id"):
        confirmed(invocation, nonce="guess", input_hash=invocation.input_hash, by=USER, now=NOW)
    with pytest.raises(InvalidArgumentError, match="input_hash") as caught:
        confirmed(invocation, nonce=nonce, input_hash=json_hash({"salary": 1}), by=USER, now=NOW)
    assert caught.value.field == "input_hash"
    running = confirmed(invocation, nonce=nonce, input_hash=invocation.input_hash, by=USER, now=NOW)
    assert running.state is InvocationState.RUNNING
    assert running.decided_by == USER
    assert running.input == invocation.input
    with pytest.raises(FailedPreconditionError, match="not pending"):
        confirmed(running, nonce=nonce, input_hash=invocation.input_hash, by=USER, now=NOW)


def test_i3_a_parked_invocation_is_decided_once_and_expires_at_its_deadline() -> None:
    invocation = parked()
    deadline = NOW + dt.timedelta(minutes=15)
    assert not is_overdue(invocation, deadline - dt.timedelta(seconds=1))
    assert is_overdue(invocation, deadline)
    with pytest.raises(FailedPreconditionError, match="expired"):
        confirmed(
            invocation, nonce="the-nonce", input_hash=invocation.input_hash, by=USER, now=deadline
        )
    gone = expired(invocation, deadline)
    assert gone.state is InvocationState.EXPIRED
    assert gone.completed_at == deadline
    assert not is_overdue(gone, deadline)
    refused = rejected(invocation, nonce="the-nonce", by=USER, now=NOW)
    assert refused.state is InvocationState.REJECTED
    for decide in (
        lambda: rejected(refused, nonce="the-nonce", by=USER, now=NOW),
        lambda: confirmed(
            refused, nonce="the-nonce", input_hash=invocation.input_hash, by=USER, now=NOW
        ),
        lambda: rejected(gone, nonce="the-nonce", by=USER, now=NOW),
    ):
        with pytest.raises(FailedPreconditionError):
            decide()


def test_i4_outcomes_record_output_hash_or_error() -> None:
    running = dataclasses.replace(parked(), state=InvocationState.RUNNING)
    output = {"offer": {"offer_id": "o-1", "salary": "90000"}}
    done = succeeded(running, output, json_hash(output), NOW)
    assert done.state is InvocationState.SUCCEEDED
    assert done.output_hash == json_hash(done.output)
    broken = failed(running, "PERMISSION_DENIED", "no" * 600, NOW)
    assert broken.state is InvocationState.FAILED
    assert broken.error_code == "PERMISSION_DENIED"
    assert len(broken.error_message) == 1000


def test_i2_target_failures_answer_with_the_same_class_of_status() -> None:
    invocation_id = uuid.uuid4()
    denied = error_for_target(invocation_id, "PERMISSION_DENIED", "not yours")
    assert isinstance(denied, PermissionDeniedError)
    assert str(invocation_id) in denied.message
    assert "not yours" in denied.message
    assert isinstance(error_for_target(invocation_id, "NOT_FOUND", ""), NotFoundError)
    for unexpected in ("UNAUTHENTICATED", "INTERNAL", "DEADLINE_EXCEEDED", "UNAVAILABLE"):
        assert isinstance(error_for_target(invocation_id, unexpected, ""), UnavailableError)
