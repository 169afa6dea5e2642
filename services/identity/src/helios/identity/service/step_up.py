"""Step-up (I3): a person in their own session proves a fresh TOTP code again and gets a
short-lived token for exactly one sensitive step."""

from __future__ import annotations

import datetime as dt
import uuid

from google.protobuf.message import Message

from helios.identity.domain.api_keys import API_KEY_SESSION_PREFIX
from helios.identity.domain.step_up import STEP_UP_TTL, validate_step_up
from helios.identity.ports import Clock, UnitOfWork
from helios.identity.ports.mfa import StepUpIssuer
from helios.identity.service.mfa import WRONG_CODE, MfaService
from helios.identity.service.throttling import SignInGuard
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from helios.kernel.step_up import StepUpGrant
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2

__all__ = ["StepUpService"]

ACTION = "identity.mfa.stepUp"


class StepUpService:
    """Checks the code like a sign-in's second factor (a used TOTP step is refused, wrong codes
    count towards the account's and the address's lockout) and signs the token."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        guard: SignInGuard,
        mfa: MfaService,
        issuer: StepUpIssuer | None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._guard = guard
        self._mfa = mfa
        self._issuer = issuer

    async def step_up(
        self,
        code: str,
        purpose: str,
        binding: str,
        org_id: str,
        ctx: CallContext,
        request: Message | None,
    ) -> tuple[str, dt.datetime]:
        """A token for `purpose` on `binding` in the caller's session and org, and its expiry.

        PermissionDeniedError for an AI, an API key, an impersonation, no org or another org;
        InvalidArgumentError for a bad purpose or binding, an empty or wrong code (audited);
        FailedPreconditionError without a confirmed authenticator app or without a signing key;
        ResourceExhaustedError while the account or address is locked."""
        principal = ctx.require_principal()
        self._refuse_non_person(principal)
        if not principal.org_id:
            raise PermissionDeniedError("a step-up is made in an org: sign in to one")
        if org_id and org_id != principal.org_id:
            raise PermissionDeniedError("a step-up is made in the org of one's session")
        bound = validate_step_up(purpose, binding)
        if not code.strip():
            raise InvalidArgumentError("the code is required", field="code")
        if self._issuer is None:
            raise FailedPreconditionError("step-up is not configured on this deployment")
        user_id = uuid.UUID(principal.actor_id)
        async with self._uow() as tx:
            user = await tx.user_by_id(user_id)
            totp = await tx.totp_of(user_id)
        if user is None:
            raise UnauthenticatedError("this account no longer exists")
        if totp is None or not totp.confirmed:
            raise FailedPreconditionError("set up an authenticator app (TOTP) to step up")
        keys = self._guard.keys(user.email, ctx.ip)
        locked_until = await self._guard.locked_until(keys)
        if locked_until is not None:
            await self._guard.refuse_locked(locked_until, ctx, request, action=ACTION)
        step = await self._mfa.totp_step(totp, code)
        now = self._clock()
        grant = StepUpGrant(
            user_id=principal.actor_id,
            session_id=principal.session_id,
            org_id=principal.org_id,
            purpose=purpose,
            binding=bound,
            method="totp",
        )
        async with self._uow() as tx:
            passed = step is not None and await tx.use_totp_step(user_id, step)
            token, token_id = self._issuer.issue(grant, now, STEP_UP_TTL) if passed else ("", "")
            await tx.record(
                Change(
                    action=ACTION,
                    resource_type="identity.user",
                    resource_id=str(user_id),
                    outcome=events_pb2.AUDIT_OUTCOME_SUCCESS
                    if passed
                    else events_pb2.AUDIT_OUTCOME_FAILURE,
                    request=request,
                    diff={
                        "purpose": purpose,
                        "binding": bound,
                        "method": "totp",
                        "token_id": token_id,
                    },
                ),
                ctx,
            )
            if not passed:
                await self._guard.count_failure(tx, keys, user, ctx, request)
        if not passed:
            raise InvalidArgumentError(WRONG_CODE, field="code")
        return token, now + STEP_UP_TTL

    @staticmethod
    def _refuse_non_person(principal: principal_pb2.Principal) -> None:
        if principal.actor_type != principal_pb2.ACTOR_TYPE_USER:
            raise PermissionDeniedError("only a person can step up")
        if principal.impersonator_id:
            raise PermissionDeniedError("an impersonation cannot step up")
        if principal.session_id.startswith(API_KEY_SESSION_PREFIX):
            raise PermissionDeniedError("an API key cannot step up")
