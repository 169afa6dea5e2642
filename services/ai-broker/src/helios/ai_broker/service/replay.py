"""ReplayCheck (I4): re-run a recorded read-only invocation with its recorded input, as the same
AI principal, and compare the output hash with the recorded one.

Only a SUCCEEDED invocation of an action that was not dangerous then and is not now is re-run
(never a dangerous one: replaying would repeat its effect), only while its AI session is active
and the action's permission is still granted to that session. The caller is a person holding
`ai.invocation.replay` on the invocation (owner: the delegating user). The replay's event is
recorded as the AI principal (its target call), with the person who asked in its diff; a refusal
is recorded as the person. The session's rate limit does not apply: a person asked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from google.protobuf.message import Message

from helios.ai_broker.domain.hashing import json_hash
from helios.ai_broker.domain.invocations import TargetCallError, error_for_target
from helios.ai_broker.domain.model import Action, Invocation, InvocationState
from helios.ai_broker.ports import Authz, Clock, UnitOfWork
from helios.ai_broker.ports.invocations import ActionTargets
from helios.ai_broker.service.invocations import (
    RESOURCE,
    ai_context,
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
    NotFoundError,
    PermissionDeniedError,
)
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2

__all__ = ["REPLAY", "ReplayResult", "ReplayService"]

REPLAY = "ai.invocation.replay"


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """The recorded and the replayed output hash, and whether they are equal."""

    recorded_output_hash: str
    replayed_output_hash: str

    @property
    def matches(self) -> bool:
        """Whether the replay produced the recorded output."""
        return self.recorded_output_hash == self.replayed_output_hash


@dataclass(frozen=True, slots=True)
class _Replayable:
    invocation: Invocation
    action: Action
    principal: principal_pb2.Principal
    decision_id: str


class ReplayService:
    """ReplayCheck."""

    def __init__(self, uow: UnitOfWork, clock: Clock, authz: Authz, targets: ActionTargets) -> None:
        self._uow = uow
        self._clock = clock
        self._authz = authz
        self._targets = targets

    async def replay_check(
        self, org_id: str, invocation_id: str, ctx: CallContext, request: Message | None
    ) -> ReplayResult:
        """Re-run the invocation and compare output hashes (audited either way). Raises, each
        audited: PermissionDeniedError for an AI caller, a caller without the right, or an AI
        session that lost the action's permission; FailedPreconditionError for an invocation
        that did not succeed, a dangerous action, an inactive AI session or an action no
        longer registered; NotFoundError outside the caller's org; and, when the target
        fails, the error of its status."""
        principal = ctx.require_principal()
        target = uuid_field(invocation_id, "invocation_id")
        known: Invocation | None = None
        try:
            known = await self._visible(principal, org_id, target)
            replayable = await self._replayable(principal, ctx, known)
        except DomainError as refusal:
            async with self._uow() as tx:
                await tx.record(
                    refusal_change(
                        REPLAY,
                        refusal,
                        request,
                        trail(known) if known is not None else {},
                        resource_id=str(target),
                        org_id=known.org_id if known is not None else "",
                    ),
                    ctx,
                )
            raise
        invocation = replayable.invocation
        try:
            output = await self._targets.call(
                replayable.action.service,
                replayable.action.target_method,
                invocation.input,
                replayable.principal,
            )
        except TargetCallError as exc:
            await self._record(replayable, ctx, principal, error_code=exc.code)
            raise error_for_target(invocation.id, exc.code, exc.message) from exc
        result = ReplayResult(invocation.output_hash, json_hash(output))
        await self._record(
            replayable,
            ctx,
            principal,
            replayed_output_hash=result.replayed_output_hash,
            matches=result.matches,
        )
        return result

    async def _visible(
        self, principal: principal_pb2.Principal, org_id: str, target: uuid.UUID
    ) -> Invocation:
        if principal.actor_type == principal_pb2.ACTOR_TYPE_AI:
            raise PermissionDeniedError("ReplayCheck needs a person, not an AI")
        org = invocation_org(principal, org_id)
        async with self._uow() as tx:
            invocation = await tx.invocation_by_id(target)
        if invocation is None or invocation.org_id != org:
            raise NotFoundError("no such invocation", field="invocation_id")
        decision = await self._authz.check(
            principal, REPLAY, org_id=org, owner_id=invocation.user_id
        )
        if not decision.allowed:
            raise PermissionDeniedError(f"{REPLAY} is not granted to you on this invocation")
        return invocation

    async def _replayable(
        self, principal: principal_pb2.Principal, ctx: CallContext, invocation: Invocation
    ) -> _Replayable:
        if invocation.state is not InvocationState.SUCCEEDED or invocation.dangerous:
            raise FailedPreconditionError(
                "only a succeeded invocation of a read-only (not dangerous) action is replayed"
            )
        async with self._uow() as tx:
            session = await tx.ai_session_by_id(invocation.ai_session_id)
            action = await tx.action_by_name(invocation.action)
        if session is None or not session.is_active(self._clock()):
            raise FailedPreconditionError(
                "the AI session of this invocation is no longer active: it cannot be replayed"
                " as that AI"
            )
        if action is None or not action.ai_allowed:
            raise FailedPreconditionError(
                f"{invocation.action} is no longer a registered action open to AIs"
            )
        ai = ai_principal(session, principal.ip or ctx.ip, principal.user_agent)
        decision = await session_decision(self._authz, ai, session, action)
        if not decision.allowed:
            raise PermissionDeniedError(
                f"{action.permission} is no longer granted to this AI session"
            )
        if decision.dangerous:
            raise FailedPreconditionError(f"{action.name} is dangerous now: it is not replayed")
        return _Replayable(invocation, action, ai, decision.decision_id)

    async def _record(
        self,
        replayable: _Replayable,
        ctx: CallContext,
        asked_by: principal_pb2.Principal,
        **more: object,
    ) -> None:
        """The replay's event, as the AI principal whose call it was."""
        invocation = replayable.invocation
        failed = "error_code" in more
        async with self._uow() as tx:
            await tx.record(
                Change(
                    action=REPLAY,
                    resource_type=RESOURCE,
                    resource_id=str(invocation.id),
                    org_id=invocation.org_id,
                    outcome=events_pb2.AUDIT_OUTCOME_FAILURE
                    if failed
                    else events_pb2.AUDIT_OUTCOME_SUCCESS,
                    decision_id=replayable.decision_id,
                    input_hash=invocation.input_hash,
                    diff=trail(
                        invocation,
                        recorded_output_hash=invocation.output_hash,
                        requested_by=asked_by.actor_id,
                        **more,
                    ),
                ),
                ai_context(ctx, replayable.principal),
            )
