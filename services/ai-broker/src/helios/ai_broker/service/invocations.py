"""AI invocations (I2, I4): Invoke runs a registered action as the delegating user, or parks it
for that person when it is dangerous (their decision: confirmations.py); GetInvocation shows one;
InvocationRunner performs a recorded invocation and ends overdue ones.

Who may: Invoke takes the AI principal of an active AI session only. Its user must hold
`ai.action.invoke` (asked as the AI principal without the narrowing: the precondition of
delegating at all), and the action's permission is asked as the AI principal within the
session's narrowing, on a resource of the session's org owned by its user, so a grant of any
scope counts; the target service checks its own resources again, as the same AI principal.

Audit (I4): every attempt is recorded in the transaction of its effect, refusals included. A
decision is recorded as whoever made it; the target call's own event (`ai.invocation.complete`)
as the AI principal, even when a person's confirmation triggered it. Diffs carry the action,
AI session, input and output hashes, decision id and system-prompt hash. No database
transaction stays open across a call to authz or to a target service.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from helios.ai_broker.domain.hashing import json_hash
from helios.ai_broker.domain.invocations import (
    TargetCallError,
    error_for_target,
    expired,
    failed,
    is_overdue,
    new_confirmation,
    render_summary,
    succeeded,
    validate_input,
)
from helios.ai_broker.domain.model import Action, AiSession, Invocation, InvocationState
from helios.ai_broker.domain.policy import DEFAULT_POLICY
from helios.ai_broker.ports import Authz, AuthzDecision, BrokerTransaction, Clock, UnitOfWork
from helios.ai_broker.ports.invocations import ActionTargets
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import (
    DomainError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
)
from helios.kernel.status import status_for
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2

__all__ = [
    "COMPLETE",
    "CONFIRM",
    "DEFAULT_CONFIRMATION_TTL",
    "INVOKE",
    "READ",
    "REJECT",
    "RESOURCE",
    "InvocationRunner",
    "InvocationService",
    "InvokeResult",
    "ai_context",
    "ai_principal",
    "invocation_org",
    "refusal_change",
    "session_decision",
    "trail",
    "uuid_field",
]

INVOKE = "ai.action.invoke"
CONFIRM = "ai.invocation.confirm"
REJECT = "ai.invocation.reject"
READ = "ai.invocation.read"
COMPLETE = "ai.invocation.complete"
_EXPIRE = "ai.invocation.expire"
RESOURCE = "ai.invocation"
DEFAULT_CONFIRMATION_TTL = dt.timedelta(minutes=15)
_SESSION_GONE = "the AI session is expired, revoked or unknown"
_NO_INVOCATION = "no such invocation"
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_DENIED = (PermissionDeniedError, UnauthenticatedError)


@dataclass(frozen=True, slots=True)
class InvokeResult:
    """The invocation after Invoke; `confirmation_id` is the nonce of a parked one (returned
    once, only its hash is kept), '' otherwise."""

    invocation: Invocation
    confirmation_id: str = ""


def uuid_field(value: str, field: str) -> uuid.UUID:
    """`value` as a UUID; raises InvalidArgumentError naming `field` otherwise."""
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidArgumentError(f"{field} must be a UUID", field=field) from exc


def invocation_org(principal: principal_pb2.Principal, org_id: str) -> str:
    """The principal's org, which the request must name or leave empty."""
    if not principal.org_id:
        raise PermissionDeniedError("the caller belongs to no org")
    if org_id and org_id != principal.org_id:
        raise PermissionDeniedError("invocations of another org are out of reach")
    return principal.org_id


def ai_principal(session: AiSession, ip: str = "", user_agent: str = "") -> principal_pb2.Principal:
    """The principal an AI session acts as: actor_type AI, the delegating user, the session."""
    return principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_AI,
        actor_id=session.user_id,
        org_id=session.org_id,
        session_id=str(session.id),
        ip=ip,
        user_agent=user_agent,
    )


def ai_context(ctx: CallContext, principal: principal_pb2.Principal) -> CallContext:
    """The call context `ctx` with the AI principal as actor (for the AI call's audit event)."""
    return dataclasses.replace(ctx, principal=principal)


async def session_decision(
    authz: Authz, principal: principal_pb2.Principal, session: AiSession, action: Action
) -> AuthzDecision:
    """Authz's decision on the action's permission for the AI principal of `session`, within
    its narrowing, on a resource of its org owned by its user."""
    return await authz.check(
        principal,
        action.permission,
        narrowing=session.permissions,
        org_id=session.org_id,
        owner_id=session.user_id,
    )


def trail(invocation: Invocation, **more: object) -> dict[str, object]:
    """The I4 fields of an invocation's audit diff, and `more`."""
    return {
        "action": invocation.action,
        "ai_session_id": str(invocation.ai_session_id),
        "state": invocation.state.value,
        "dangerous": invocation.dangerous,
        "input_hash": invocation.input_hash,
        "output_hash": invocation.output_hash,
        "decision_id": invocation.decision_id,
        "system_prompt_hash": invocation.system_prompt_hash,
        **({"error_code": invocation.error_code} if invocation.error_code else {}),
        **more,
    }


def refusal_change(
    key: str,
    refusal: DomainError,
    request: Message | None,
    diff: dict[str, object],
    *,
    resource_id: str = "",
    org_id: str = "",
    decision_id: str = "",
) -> Change:
    """The audit event of a refused `key`: DENIED for a missing right, FAILURE otherwise, with
    the status and message the caller got (not the message of an invalid argument: it may quote
    the input, of which the audit keeps only the hash)."""
    return Change(
        action=key,
        resource_type=RESOURCE,
        resource_id=resource_id,
        org_id=org_id,
        outcome=events_pb2.AUDIT_OUTCOME_DENIED
        if isinstance(refusal, _DENIED)
        else events_pb2.AUDIT_OUTCOME_FAILURE,
        request=request,
        decision_id=decision_id,
        input_hash=str(diff.get("input_hash", "")),
        output_hash=str(diff.get("output_hash", "")),
        diff={
            **diff,
            "refused": True,
            "error_code": status_for(refusal).name,
            **(
                {}
                if isinstance(refusal, InvalidArgumentError)
                else {"error_message": refusal.message[:300]}
            ),
        },
    )


@dataclass
class _Attempt:
    """What an Invoke established before a refusal, for its audit event."""

    action: str
    input_hash: str
    system_prompt_hash: str
    ai_session_id: str
    decision_id: str = ""

    def diff(self) -> dict[str, object]:
        return {
            "action": self.action,
            "ai_session_id": self.ai_session_id,
            "input_hash": self.input_hash,
            "decision_id": self.decision_id,
            "system_prompt_hash": self.system_prompt_hash,
        }


@dataclass(frozen=True, slots=True)
class _Admitted:
    session: AiSession
    action: Action
    decision: AuthzDecision
    step_up_required: bool


class InvocationRunner:
    """Performs recorded invocations and ends overdue ones, for Invoke and for a person's
    confirmation alike."""

    def __init__(self, uow: UnitOfWork, clock: Clock, targets: ActionTargets) -> None:
        self._uow = uow
        self._clock = clock
        self._targets = targets

    async def run(
        self,
        invocation: Invocation,
        action: Action,
        principal: principal_pb2.Principal,
        ctx: CallContext,
    ) -> Invocation:
        """Call the target with the invocation's input as the AI `principal` and record the
        outcome, audited as that principal; never retried."""
        try:
            output = await self._targets.call(
                action.service, action.target_method, invocation.input, principal
            )
        except TargetCallError as exc:
            done = failed(invocation, exc.code, exc.message, self._clock())
        else:
            done = succeeded(invocation, output, json_hash(output), self._clock())
        ok = done.state is InvocationState.SUCCEEDED
        async with self._uow() as tx:
            await tx.save_invocation(done)
            await tx.record(
                Change(
                    action=COMPLETE,
                    resource_type=RESOURCE,
                    resource_id=str(done.id),
                    org_id=done.org_id,
                    outcome=events_pb2.AUDIT_OUTCOME_SUCCESS
                    if ok
                    else events_pb2.AUDIT_OUTCOME_FAILURE,
                    decision_id=done.decision_id,
                    diff=trail(done),
                    input_hash=done.input_hash,
                    output_hash=done.output_hash,
                ),
                ai_context(ctx, principal),
            )
        return done

    @staticmethod
    async def expire(
        tx: BrokerTransaction, overdue: Invocation, now: dt.datetime, ctx: CallContext
    ) -> Invocation:
        """The overdue invocation (its row locked), now EXPIRED and audited."""
        done = expired(overdue, now)
        await tx.save_invocation(done)
        await tx.record(
            Change(
                action=_EXPIRE,
                resource_type=RESOURCE,
                resource_id=str(done.id),
                org_id=done.org_id,
                diff=trail(done),
                input_hash=done.input_hash,
                output_hash=done.output_hash,
            ),
            ctx,
        )
        return done


class InvocationService:
    """Invoke and GetInvocation."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        authz: Authz,
        runner: InvocationRunner,
        confirmation_ttl: dt.timedelta = DEFAULT_CONFIRMATION_TTL,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._authz = authz
        self._runner = runner
        self._confirmation_ttl = confirmation_ttl

    async def invoke(
        self,
        org_id: str,
        action_name: str,
        data: dict[str, Any],
        system_prompt_hash: str,
        ctx: CallContext,
        request: Message | None,
    ) -> InvokeResult:
        """Run `action_name` with `data` (plain JSON, whole numbers as ints) as the caller's AI
        principal, or park it when authz says the action is dangerous in the org. Raises, each
        audited: PermissionDeniedError for a caller that is not an AI, another org, an action
        not open to AIs or a right the AI session lacks; UnauthenticatedError for an expired,
        revoked or unknown AI session; NotFoundError for an unregistered action (nothing else
        can be called, I5); InvalidArgumentError for input the schema refuses;
        ResourceExhaustedError past the session's rate limit; and, when the target fails, the
        error of its status (the invocation is then FAILED)."""
        principal = ctx.require_principal()
        attempt = _Attempt(
            action=action_name[:200],
            input_hash=json_hash(data),
            system_prompt_hash=system_prompt_hash[:64],
            ai_session_id=principal.session_id[:64],
        )
        try:
            admitted = await self._admit(principal, org_id, action_name, data, attempt)
        except DomainError as refusal:
            async with self._uow() as tx:
                await tx.record(
                    refusal_change(
                        INVOKE,
                        refusal,
                        request,
                        attempt.diff(),
                        org_id=principal.org_id,
                        decision_id=attempt.decision_id,
                    ),
                    ctx,
                )
            raise
        invocation, nonce = self._new_invocation(admitted, data, attempt)
        limited = await self._start(invocation, admitted.session, ctx, request)
        if limited is not None:
            raise limited
        if nonce:
            return InvokeResult(invocation, nonce)
        done = await self._runner.run(invocation, admitted.action, principal, ctx)
        if done.state is InvocationState.FAILED:
            raise error_for_target(done.id, done.error_code, done.error_message)
        return InvokeResult(done)

    async def _admit(
        self,
        principal: principal_pb2.Principal,
        org_id: str,
        action_name: str,
        data: dict[str, Any],
        attempt: _Attempt,
    ) -> _Admitted:
        if principal.actor_type != principal_pb2.ACTOR_TYPE_AI:
            raise PermissionDeniedError(
                "Invoke needs an AI token: a person calls the service directly"
            )
        invocation_org(principal, org_id)
        if attempt.system_prompt_hash and not _HEX_SHA256.fullmatch(attempt.system_prompt_hash):
            raise InvalidArgumentError(
                "system_prompt_hash must be a hex sha256 (from BuildPrompt) or empty",
                field="system_prompt_hash",
            )
        try:
            session_id = uuid.UUID(principal.session_id)
        except ValueError as exc:
            raise UnauthenticatedError(_SESSION_GONE) from exc
        async with self._uow() as tx:
            session = await tx.ai_session_by_id(session_id)
            action = await tx.action_by_name(action_name)
            policy = await tx.ai_policy_of(session.org_id) if session else DEFAULT_POLICY
        if (
            session is None
            or not session.is_active(self._clock())
            or session.user_id != principal.actor_id
            or session.org_id != principal.org_id
        ):
            raise UnauthenticatedError(_SESSION_GONE)
        if action is None:
            raise NotFoundError(f"not a registered action: {action_name[:200]}", field="action")
        if not action.ai_allowed:
            raise PermissionDeniedError(f"{action.name} is not open to AIs")
        validate_input(action.input_schema, data)
        delegating = await self._authz.check(
            principal, INVOKE, org_id=session.org_id, owner_id=session.user_id
        )
        attempt.decision_id = delegating.decision_id
        if not delegating.allowed:
            raise PermissionDeniedError(f"{INVOKE} is not granted to the person this AI acts for")
        decision = await session_decision(self._authz, principal, session, action)
        attempt.decision_id = decision.decision_id
        if not decision.allowed:
            raise PermissionDeniedError(f"{action.permission} is not granted to this AI session")
        return _Admitted(session, action, decision, policy.require_step_up_to_confirm)

    def _new_invocation(
        self, admitted: _Admitted, data: dict[str, Any], attempt: _Attempt
    ) -> tuple[Invocation, str]:
        """The invocation to record, RUNNING or parked (with its nonce)."""
        now = self._clock()
        session, action = admitted.session, admitted.action
        invocation = Invocation(
            id=uuid.uuid4(),
            org_id=session.org_id,
            ai_session_id=session.id,
            user_id=session.user_id,
            action=action.name,
            state=InvocationState.RUNNING,
            input=data,
            input_hash=attempt.input_hash,
            dangerous=admitted.decision.dangerous,
            decision_id=admitted.decision.decision_id,
            created_at=now,
            system_prompt_hash=attempt.system_prompt_hash,
        )
        if not admitted.decision.dangerous:
            return invocation, ""
        nonce, nonce_hash = new_confirmation()
        parked = dataclasses.replace(
            invocation,
            state=InvocationState.PENDING_CONFIRMATION,
            confirmation_hash=nonce_hash,
            confirmation_expires_at=now + self._confirmation_ttl,
            summary=render_summary(action.summary_template, data),
            step_up_required=admitted.step_up_required,
        )
        return parked, nonce

    async def _start(
        self, invocation: Invocation, session: AiSession, ctx: CallContext, request: Message | None
    ) -> ResourceExhaustedError | None:
        """Count the invocation against the session's rate limit and record it (RUNNING or
        parked); the refusal, audited, when the limit is reached."""
        now = invocation.created_at
        async with self._uow() as tx:
            if await tx.take_rate_slot(session.id, now, session.rate_limit_per_minute):
                await tx.add_invocation(invocation)
                await tx.record(
                    Change(
                        action=INVOKE,
                        resource_type=RESOURCE,
                        resource_id=str(invocation.id),
                        org_id=invocation.org_id,
                        request=request,
                        decision_id=invocation.decision_id,
                        diff=trail(invocation),
                        input_hash=invocation.input_hash,
                        output_hash=invocation.output_hash,
                    ),
                    ctx,
                )
                return None
            limited = ResourceExhaustedError(
                f"this AI session may invoke {session.rate_limit_per_minute} times a minute",
                retry_after_seconds=max(1, 60 - now.second),
            )
            await tx.record(
                refusal_change(
                    INVOKE,
                    limited,
                    request,
                    trail(invocation),
                    org_id=invocation.org_id,
                    decision_id=invocation.decision_id,
                ),
                ctx,
            )
            return limited

    async def get(self, org_id: str, invocation_id: str, ctx: CallContext) -> Invocation:
        """The invocation, for the person who delegated, the AI session that invoked it (while
        active), or a person holding `ai.invocation.read` on it (owner: the delegating user;
        invocations carry no team, so a `team` grant reaches only one's own). A pending one
        past its deadline becomes EXPIRED (audited). Raises NotFoundError outside the caller's
        org, UnauthenticatedError for an AI session no longer active, PermissionDeniedError
        for other readers."""
        principal = ctx.require_principal()
        org = invocation_org(principal, org_id)
        target = uuid_field(invocation_id, "invocation_id")
        async with self._uow() as tx:
            invocation = await tx.invocation_by_id(target)
        if invocation is None or invocation.org_id != org:
            raise NotFoundError(_NO_INVOCATION, field="invocation_id")
        await self._require_reader(principal, invocation)
        if is_overdue(invocation, self._clock()):
            async with self._uow() as tx:
                locked = await tx.invocation_by_id(target, for_update=True)
                now = self._clock()
                if locked is not None and is_overdue(locked, now):
                    invocation = await self._runner.expire(tx, locked, now, ctx)
        return invocation

    async def _require_reader(
        self, principal: principal_pb2.Principal, invocation: Invocation
    ) -> None:
        if principal.actor_type == principal_pb2.ACTOR_TYPE_AI:
            if principal.session_id != str(invocation.ai_session_id):
                raise PermissionDeniedError("an AI sees only its own session's invocations")
            async with self._uow() as tx:
                session = await tx.ai_session_by_id(invocation.ai_session_id)
            if session is None or not session.is_active(self._clock()):
                raise UnauthenticatedError(_SESSION_GONE)
            return
        if principal.actor_id == invocation.user_id:
            return
        decision = await self._authz.check(
            principal, READ, org_id=invocation.org_id, owner_id=invocation.user_id
        )
        if not decision.allowed:
            raise PermissionDeniedError(f"{READ} is not granted to you on this invocation")
