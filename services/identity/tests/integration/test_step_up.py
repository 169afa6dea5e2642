"""Step-up over gRPC (I3): a person in their own session proves a fresh TOTP code again and gets
a five-minute token, signed by identity, for one purpose and one object in that session and org.
Real PostgreSQL and a real in-process keyvault sealing the TOTP secret; the clock is driven."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from helios.identity.domain.throttle import ThrottlePolicy
from helios.identity.keyvault_sealer import KeyvaultRowSealer
from helios.kernel.clients import call_metadata
from helios.kernel.errors import PermissionDeniedError
from helios.kernel.principal import AssertionSigner, load_private_key, load_public_key
from helios.kernel.step_up import StepUpGrant, StepUpVerifier
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2
from helios.proto.identity.v1 import identity_pb2
from helios.proto.keyvault.v1 import keyvault_pb2_grpc

from .test_second_factor import (
    Account,
    Clock,
    OutboxEvents,
    _account,
    _enrol_totp,
    _refused,
)

pytestmark = pytest.mark.integration

CONFIRM = "ai.invocation.confirm"
THROTTLE = ThrottlePolicy(
    max_failures_per_account=3,
    max_failures_per_ip=50,
    window=dt.timedelta(minutes=15),
    lockout=dt.timedelta(minutes=15),
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def server(
    start_identity: Any, keyvault_stub: keyvault_pb2_grpc.KeyvaultServiceStub, clock: Clock
) -> Any:
    """Identity sealing TOTP secrets with the real keyvault, a 3-failure account lockout."""
    sealer = KeyvaultRowSealer(keyvault_stub, str(uuid.uuid4()), "identity-totp")  # type: ignore[arg-type]
    return await start_identity(clock=clock, totp_sealer=sealer, throttle=THROTTLE)


class InOrg:
    """The account's session as a member of an org: its principal, re-signed with the org (as
    identity signs it for a member), and variants of it."""

    def __init__(self, account: Account, session_id: str, signer: AssertionSigner) -> None:
        self.org = str(uuid.uuid4())
        self.session_id = session_id
        self._account = account
        self._signer = signer

    def metadata(self, **extra: Any) -> tuple[tuple[str, str | bytes], ...]:
        principal = principal_pb2.Principal(
            **{
                "actor_type": principal_pb2.ACTOR_TYPE_USER,
                "actor_id": self._account.user_id,
                "org_id": self.org,
                "session_id": self.session_id,
                "ip": "203.0.113.7",
                **extra,
            }
        )
        return call_metadata(assertion=self._signer.sign(principal), client_ip="203.0.113.7")


async def _in_org(stub: Any, principal_keys: tuple[Path, Path]) -> tuple[Account, InOrg]:
    account = await _account(stub)
    current = await stub.GetCurrentUser(
        identity_pb2.GetCurrentUserRequest(), metadata=account.metadata, timeout=10
    )
    signer = AssertionSigner(load_private_key(principal_keys[0]))
    return account, InOrg(account, current.session.session_id, signer)


def _step_up(code: str, binding: str, **fields: str) -> identity_pb2.StepUpRequest:
    return identity_pb2.StepUpRequest(
        **{"code": code, "purpose": CONFIRM, "binding": binding, **fields}
    )


async def test_i3_a_fresh_totp_code_yields_a_token_for_exactly_that_step(
    server: Any, clock: Clock, principal_keys: tuple[Path, Path], outbox_events: OutboxEvents
) -> None:
    """I3: the token verifies with identity's public key for this person, session, org, purpose
    and object only, for five minutes; the step-up is audited with the token's id (never the
    token); the same code cannot be used twice."""
    stub = server.stub()
    account, member = await _in_org(stub, principal_keys)
    totp, _ = await _enrol_totp(stub, account, clock)
    binding = str(uuid.uuid4())
    await outbox_events()
    reply = await stub.StepUp(
        _step_up(totp.at(clock.now), binding), metadata=member.metadata(), timeout=10
    )
    assert reply.expires_at.ToDatetime(dt.UTC) == clock.now + dt.timedelta(minutes=5)
    verifier = StepUpVerifier([load_public_key(principal_keys[1])])
    grant = StepUpGrant(account.user_id, member.session_id, member.org, CONFIRM, binding, "")
    token_id = verifier.verify(reply.step_up_token, grant, clock.now + dt.timedelta(minutes=4))
    other = StepUpGrant(
        account.user_id, member.session_id, member.org, CONFIRM, str(uuid.uuid4()), ""
    )
    with pytest.raises(PermissionDeniedError, match="made for another"):
        verifier.verify(reply.step_up_token, other, clock.now)
    ((_, event),) = [e for e in await outbox_events() if e[1].action == "identity.mfa.stepUp"]
    assert event.outcome == events_pb2.AUDIT_OUTCOME_SUCCESS
    assert event.diff["token_id"] == token_id
    assert event.diff["binding"] == binding
    assert reply.step_up_token not in str(event)

    replayed = await _refused(
        stub.StepUp(_step_up(totp.at(clock.now), binding), metadata=member.metadata(), timeout=10)
    )
    assert replayed.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_i3_step_up_is_refused_to_anyone_but_the_person_in_their_org_with_a_right_code(
    server: Any, clock: Clock, principal_keys: tuple[Path, Path], outbox_events: OutboxEvents
) -> None:
    """I3: refused before any code is checked: no authenticator app (FAILED_PRECONDITION), an
    unknown purpose, a binding that is not a UUID, an empty code (INVALID_ARGUMENT); an AI, an
    API key, an impersonation, no org, another org (PERMISSION_DENIED). A wrong code is refused
    and audited; three lock the account, so even the right code is then refused (429)."""
    stub = server.stub()
    account, member = await _in_org(stub, principal_keys)
    binding = str(uuid.uuid4())
    no_app = await _refused(
        stub.StepUp(_step_up("123456", binding), metadata=member.metadata(), timeout=10)
    )
    assert no_app.code() == grpc.StatusCode.FAILED_PRECONDITION
    totp, _ = await _enrol_totp(stub, account, clock)
    code = totp.at(clock.now)
    cases: list[tuple[identity_pb2.StepUpRequest, Any, grpc.StatusCode]] = [
        (
            _step_up(code, binding, purpose="identity.password.change"),
            member.metadata(),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (_step_up(code, "invocation-1"), member.metadata(), grpc.StatusCode.INVALID_ARGUMENT),
        (_step_up("", binding), member.metadata(), grpc.StatusCode.INVALID_ARGUMENT),
        (
            _step_up(code, binding),
            member.metadata(actor_type=principal_pb2.ACTOR_TYPE_AI),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            _step_up(code, binding),
            member.metadata(session_id=f"apikey:{uuid.uuid4()}"),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            _step_up(code, binding),
            member.metadata(impersonator_id=str(uuid.uuid4())),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (_step_up(code, binding), member.metadata(org_id=""), grpc.StatusCode.PERMISSION_DENIED),
        (
            _step_up(code, binding, org_id=str(uuid.uuid4())),
            member.metadata(),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
    ]
    for request, metadata, status in cases:
        error = await _refused(stub.StepUp(request, metadata=metadata, timeout=10))
        assert error.code() == status, error.details()

    await outbox_events()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(3):
        error = await _refused(
            stub.StepUp(_step_up(wrong, binding), metadata=member.metadata(), timeout=10)
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    actions = [event.action for _, event in await outbox_events()]
    assert actions.count("identity.mfa.stepUp") == 3
    assert "identity.user.signInLocked" in actions
    locked = await _refused(
        stub.StepUp(_step_up(code, binding), metadata=member.metadata(), timeout=10)
    )
    assert locked.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
