"""A person's decision on a parked invocation (I3): ConfirmInvocation runs exactly the parked input,
once, as the AI principal that asked; RejectInvocation ends it for good.

Only the person who delegated decides, in a user session of their own (never the AI, an API key
or an impersonation), holding `ai.invocation.confirm` / `ai.invocation.reject` on their own
invocations, and presenting the confirmation nonce; a confirmation also presents the hash of the
input the person was shown. At confirmation the AI session must still be active and the action's
permission is asked again for the AI. When the org's AI policy asks for it, a confirmation also
presents a step-up token from identity made for this person, session and invocation. The
decision is taken on the locked row, so one invocation is decided once; an overdue one becomes
EXPIRED instead. Every attempt is audited as the person; the run that follows as the AI
principal (InvocationRunner).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from google.protobuf.message import Message

from helios.ai_broker.domain.invocations import confirmed, is_overdue, rejected, require_delegator
from helios.ai_broker.domain.model import Action, AiSession, Invocation
from helios.ai_broker.ports import Authz, Clock, UnitOfWork
from helios.ai_broker.service.invocations import (
    CONFIRM,
    REJECT,
    RESOURCE,
    InvocationRunner,
    ai_principal,
    invocation_org,
    refusal_change,
    session_decision,
    trail,
    uuid_field,
)
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import (
    DomainError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from helios.kernel.step_up import StepUpGrant, StepUpVerifier
from helios.proto.common.v1 import principal_pb2

__all__ = ["MAX_REASON_CHARS", "ConfirmationService"]

MAX_REASON_CHARS = 500
_NO_INVOCATION = "no such invocation"


class ConfirmationService:
    """ConfirmInvocation and RejectInvocation."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        authz: Authz,
        runner: InvocationRunner,
        step_up: StepUpVerifier | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._authz = authz
        self._runner = runner
        self._step_up = step_up

    async def confirm(
        self,
        org_id: str,
        invocation_id: str,
        nonce: str,
        input_hash: str,
        step_up_token: str,
        ctx: CallContext,
        request: Message | None,
    ) -> Invocation:
        """Run the parked invocation once, with exactly its parked input, for the person who
        delegated (in a user session of their own, holding `ai.invocation.confirm`), presenting
        its nonce and the hash of the input they were shown; returns it SUCCEEDED or FAILED.
        The AI session must still be active and its action still allowed to it. Raises, each
        audited: PermissionDeniedError (not that person, an AI, an API key, an impersonation,
        a wrong nonce, a right gone); InvalidArgumentError for another input hash;
        FailedPreconditionError once decided, expired (it becomes EXPIRED), with an inactive
        AI session or an action no longer open to AIs, or without a step-up token when the
        org's AI policy asks for one (now or when the action was parked); PermissionDeniedError
        for a step-up token that is not identity's, expired, or made for another person,
        session, purpose or invocation (a token given when none is asked is checked too);
        NotFoundError for an unknown invocation."""
        principal = ctx.require_principal()
        target = uuid_field(invocation_id, "invocation_id")
        known: Invocation | None = None
        decision_id = ""
        try:
            known = await self._decidable(principal, org_id, target, CONFIRM)
            stepped_up = await self._stepped_up(principal, known, step_up_token)
            session, action = await self._runnable(known)
            ai = ai_principal(session, principal.ip or ctx.ip, principal.user_agent)
            decision = await session_decision(self._authz, ai, session, action)
            decision_id = decision.decision_id
            if not decision.allowed:
                raise PermissionDeniedError(
                    f"{action.permission} is no longer granted to this AI session"
                )
        except DomainError as refusal:
            await self._refused(CONFIRM, target, known, refusal, ctx, request, decision_id)
            raise
        running, refused = await self._decide(
            target,
            lambda current, now: confirmed(
                current, nonce=nonce, input_hash=input_hash, by=principal.actor_id, now=now
            ),
            CONFIRM,
            ctx,
            request,
            decision_id,
            step_up_token_id=stepped_up,
        )
        if refused is not None:
            raise refused
        return await self._runner.run(running, action, ai, ctx)

    async def _stepped_up(
        self, principal: principal_pb2.Principal, invocation: Invocation, token: str
    ) -> str:
        """The id of the step-up token presented for this confirmation ("" for none), once
        checked; refused when the org's AI policy asks for one and none is given."""
        if not token:
            async with self._uow() as tx:
                policy = await tx.ai_policy_of(invocation.org_id)
            if invocation.step_up_required or policy.require_step_up_to_confirm:
                raise FailedPreconditionError(
                    "this org asks for a step-up to confirm: call identity's StepUp with purpose "
                    f"{CONFIRM} and this invocation's id, then send its step_up_token"
                )
            return ""
        if self._step_up is None:
            raise FailedPreconditionError("step-up tokens are not accepted by this deployment")
        expected = StepUpGrant(
            user_id=principal.actor_id,
            session_id=principal.session_id,
            org_id=invocation.org_id,
            purpose=CONFIRM,
            binding=str(invocation.id),
            method="",
        )
        return self._step_up.verify(token, expected, self._clock())

    async def reject(
        self,
        org_id: str,
        invocation_id: str,
        nonce: str,
        reason: str,
        ctx: CallContext,
        request: Message | None,
    ) -> Invocation:
        """Refuse the parked invocation for good, as the person who delegated (holding
        `ai.invocation.reject`), presenting its nonce; returns it REJECTED, whatever became of
        its AI session or action. Otherwise refused like `confirm`, each audited; `reason` (at
        most MAX_REASON_CHARS characters) is audited."""
        principal = ctx.require_principal()
        target = uuid_field(invocation_id, "invocation_id")
        known: Invocation | None = None
        try:
            if len(reason) > MAX_REASON_CHARS:
                raise InvalidArgumentError(
                    f"reason is at most {MAX_REASON_CHARS} characters", field="reason"
                )
            known = await self._decidable(principal, org_id, target, REJECT)
        except DomainError as refusal:
            await self._refused(REJECT, target, known, refusal, ctx, request)
            raise
        done, refused = await self._decide(
            target,
            lambda current, now: rejected(current, nonce=nonce, by=principal.actor_id, now=now),
            REJECT,
            ctx,
            request,
            "",
            reason=reason,
        )
        if refused is not None:
            raise refused
        return done

    async def _decidable(
        self, principal: principal_pb2.Principal, org_id: str, target: uuid.UUID, key: str
    ) -> Invocation:
        """The invocation, when `principal` is its delegating person in a user session of
        their own and holds `key` on their own invocations."""
        org = invocation_org(principal, org_id)
        async with self._uow() as tx:
            invocation = await tx.invocation_by_id(target)
        if invocation is None or invocation.org_id != org:
            raise NotFoundError(_NO_INVOCATION, field="invocation_id")
        require_delegator(principal, invocation.user_id)
        decision = await self._authz.check(principal, key, org_id=org, owner_id=principal.actor_id)
        if not decision.allowed:
            raise PermissionDeniedError(f"{key} is not granted to you")
        return invocation

    async def _runnable(self, invocation: Invocation) -> tuple[AiSession, Action]:
        """The active AI session of a parked invocation and its action, still registered and
        open to AIs."""
        async with self._uow() as tx:
            session = await tx.ai_session_by_id(invocation.ai_session_id)
            action = await tx.action_by_name(invocation.action)
        if session is None or not session.is_active(self._clock()):
            raise FailedPreconditionError(
                "the AI session that asked is no longer active: the invocation cannot run"
            )
        if action is None or not action.ai_allowed:
            raise FailedPreconditionError(
                f"{invocation.action} is no longer a registered action open to AIs"
            )
        return session, action

    async def _decide(
        self,
        target: uuid.UUID,
        decide: Callable[[Invocation, dt.datetime], Invocation],
        key: str,
        ctx: CallContext,
        request: Message | None,
        decision_id: str,
        **more: object,
    ) -> tuple[Invocation, DomainError | None]:
        """Apply the person's decision `decide(current, now)` to the locked invocation and
        record it, or the refusal (an overdue invocation becomes EXPIRED first): one decision
        per invocation, ever."""
        now = self._clock()
        async with self._uow() as tx:
            current = await tx.invocation_by_id(target, for_update=True)
            if current is None:
                raise NotFoundError(_NO_INVOCATION, field="invocation_id")
            refusal: DomainError | None = None
            if is_overdue(current, now):
                current = await self._runner.expire(tx, current, now, ctx)
                refusal = FailedPreconditionError("the confirmation has expired")
            else:
                try:
                    decided: Invocation = decide(current, now)
                except DomainError as exc:
                    refusal = exc
                else:
                    await tx.save_invocation(decided)
                    await tx.record(
                        Change(
                            action=key,
                            resource_type=RESOURCE,
                            resource_id=str(target),
                            org_id=decided.org_id,
                            request=request,
                            decision_id=decision_id,
                            diff=trail(decided, **more),
                            input_hash=decided.input_hash,
                            output_hash=decided.output_hash,
                        ),
                        ctx,
                    )
                    return decided, None
            await tx.record(
                refusal_change(
                    key,
                    refusal,
                    request,
                    trail(current),
                    resource_id=str(target),
                    org_id=current.org_id,
                    decision_id=decision_id,
                ),
                ctx,
            )
            return current, refusal

    async def _refused(
        self,
        key: str,
        target: uuid.UUID,
        known: Invocation | None,
        refusal: DomainError,
        ctx: CallContext,
        request: Message | None,
        decision_id: str = "",
    ) -> None:
        async with self._uow() as tx:
            await tx.record(
                refusal_change(
                    key,
                    refusal,
                    request,
                    trail(known) if known is not None else {},
                    resource_id=str(target),
                    org_id=known.org_id if known is not None else "",
                    decision_id=decision_id,
                ),
                ctx,
            )
