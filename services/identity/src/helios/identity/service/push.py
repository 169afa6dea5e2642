"""Push 2FA (A3): registering devices, asking them to approve a sign-in, their signed answers,
and watching a push challenge until it is approved, denied or expired.

Devices authenticate by Ed25519 signatures over the byte strings of domain/push.py; the browser
that signs in authenticates by its sign-in challenge token. Every state change is audited, and
so is every refused device call (forged signatures, foreign devices, replays, late answers)."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from google.protobuf.message import Message

from helios.identity.domain.model import SignInMethod
from helios.identity.domain.push import (
    MAX_CLOCK_SKEW,
    NONCE_BYTES,
    PushChallenge,
    PushDevice,
    PushPolicy,
    PushState,
    list_message,
    parse_id,
    respond_message,
    signature_valid,
    signed_time,
    validate_device_name,
    validate_public_key,
    validate_signature,
)
from helios.identity.domain.second_factor import SignInChallenge
from helios.identity.domain.tokens import hash_token
from helios.identity.ports import Clock, IdentityTransaction, UnitOfWork
from helios.identity.service.second_factor import MAX_WRONG_CODES
from helios.identity.service.second_factor_completion import CHALLENGE_GONE
from helios.identity.service.sessions import session_of
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import (
    DomainError,
    FailedPreconditionError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
)
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2

__all__ = ["PushService"]
NOT_THIS_DEVICE = "this device may not answer for this account"
BAD_SIGNATURE = "the signature does not verify with the device's key"


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A refused device call: audited in its transaction, raised once that commits. `device`
    is the device named by the call when it exists (its user is the audited actor)."""

    error: DomainError
    reason: str
    device: PushDevice | None


class PushService:
    """Push devices and push challenges."""

    def __init__(self, uow: UnitOfWork, clock: Clock, policy: PushPolicy) -> None:
        self._uow = uow
        self._clock = clock
        self.policy = policy

    async def register_device(
        self, name: str, public_key: bytes, ctx: CallContext, request: Message | None
    ) -> PushDevice:
        """Register a device of the caller by its raw Ed25519 public key (`identity.mfa.enroll`,
        own). Raises InvalidArgumentError, PermissionDeniedError, or AlreadyExistsError when the
        caller registered this key already."""
        principal = ctx.require_principal()
        device = PushDevice(
            id=uuid.uuid4(),
            user_id=await self._enrolling_user(principal),
            name=validate_device_name(name),
            public_key=validate_public_key(public_key),
            created_at=self._clock(),
        )
        async with self._uow() as tx:
            await tx.add_push_device(device)
            await tx.record(
                Change(
                    action="identity.pushDevice.register",
                    resource_type="identity.pushDevice",
                    resource_id=str(device.id),
                    request=request,
                    diff={"name": device.name, "public_key": device.public_key.hex()},
                ),
                ctx,
            )
        return device

    async def remove_device(
        self, device_id: str, ctx: CallContext, request: Message | None
    ) -> None:
        """Remove one of the caller's devices (`identity.mfa.enroll`, own); NotFoundError when
        the caller has no such device."""
        principal = ctx.require_principal()
        device = parse_id(device_id, "device_id")
        user_id = await self._enrolling_user(principal)
        async with self._uow() as tx:
            if not await tx.remove_push_device(device, user_id):
                raise NotFoundError("no such push device", field="device_id")
            await tx.record(
                Change(
                    action="identity.pushDevice.remove",
                    resource_type="identity.pushDevice",
                    resource_id=str(device),
                    request=request,
                ),
                ctx,
            )

    async def create_challenge(
        self, challenge_token: str, ctx: CallContext, request: Message | None
    ) -> PushChallenge:
        """Ask the user's devices to approve the sign-in of `challenge_token`; supersedes the
        sign-in's pending push challenge (it becomes EXPIRED). Raises UnauthenticatedError for
        an unknown, finished or expired sign-in challenge, FailedPreconditionError when push is
        not offered to it (no device), ResourceExhaustedError after `max_per_sign_in`."""
        if not challenge_token:
            raise UnauthenticatedError(CHALLENGE_GONE)
        now = self._clock()
        async with self._uow() as tx:
            sign_in = await self._open_sign_in(tx, challenge_token, now)
            if SignInMethod.PUSH not in sign_in.methods or not await tx.push_device_count(
                sign_in.user_id
            ):
                raise FailedPreconditionError("push approval is not available for this sign-in")
            if await tx.count_push_challenges(sign_in.id) >= self.policy.max_per_sign_in:
                raise ResourceExhaustedError(
                    "too many push requests for this sign-in; sign in again"
                )
            challenge = PushChallenge(
                id=uuid.uuid4(),
                sign_in_challenge_id=sign_in.id,
                user_id=sign_in.user_id,
                nonce=secrets.token_bytes(NONCE_BYTES),
                state=PushState.PENDING,
                created_at=now,
                expires_at=min(now + self.policy.ttl, sign_in.expires_at),
                ip=sign_in.ip or ctx.ip,
                user_agent=sign_in.user_agent or ctx.user_agent,
                city=ctx.city,
                country=ctx.country,
            )
            for superseded in await tx.add_push_challenge(challenge):
                await self._record(
                    tx,
                    "identity.pushChallenge.expire",
                    superseded,
                    challenge.user_id,
                    ctx,
                    diff={"reason": "superseded", "by": str(challenge.id)},
                )
            await self._record(
                tx,
                "identity.pushChallenge.create",
                challenge.id,
                challenge.user_id,
                ctx,
                request,
                actor=challenge.user_id,
                diff={
                    "sign_in_challenge_id": str(sign_in.id),
                    "expires_at": challenge.expires_at.isoformat(),
                },
            )
        return challenge

    async def list_for_device(
        self,
        device_id: str,
        signed_seconds: int,
        signed_nanos: int,
        signature: bytes,
        ctx: CallContext,
        request: Message | None,
    ) -> list[PushChallenge]:
        """The pending push challenges of the device's user, newest first. The device signs
        `list_message(device_id, signed_at)`; raises InvalidArgumentError for malformed input,
        and (audited) PermissionDeniedError for an unknown device or a bad signature,
        FailedPreconditionError for a `signed_at` more than MAX_CLOCK_SKEW from the server's
        clock."""
        device_uuid = parse_id(device_id, "device_id")
        signed_at = signed_time(signed_seconds, signed_nanos)
        validate_signature(signature)
        message = list_message(device_uuid, signed_seconds, signed_nanos)
        now = self._clock()
        async with self._uow() as tx:
            device = await tx.push_device_by_id(device_uuid)
            outcome = self._check_listing(device, signature, message, now - signed_at)
            if isinstance(outcome, _Refusal):
                await self._refused(
                    tx,
                    "identity.pushChallenge.list",
                    "",
                    outcome,
                    ctx,
                    request,
                    diff={"device_id": str(device_uuid)},
                )
            else:
                challenges = await tx.pending_push_challenges_of(outcome.user_id, now)
        if isinstance(outcome, _Refusal):
            raise outcome.error
        return challenges

    @staticmethod
    def _check_listing(
        device: PushDevice | None, signature: bytes, message: bytes, skew: dt.timedelta
    ) -> PushDevice | _Refusal:
        """The device when its listing signature verifies and is fresh, else the refusal."""
        if device is None:
            return _Refusal(PermissionDeniedError(NOT_THIS_DEVICE), "unknown_device", None)
        if not signature_valid(device.public_key, signature, message):
            return _Refusal(PermissionDeniedError(BAD_SIGNATURE), "bad_signature", device)
        if abs(skew) > MAX_CLOCK_SKEW:
            stale = FailedPreconditionError(
                f"signed_at is more than {int(MAX_CLOCK_SKEW.total_seconds())} seconds away "
                "from the server's time: check the device clock",
                field="signed_at",
            )
            return _Refusal(stale, "stale_timestamp", device)
        return device

    async def respond(
        self,
        push_challenge_id: str,
        device_id: str,
        approve: bool,
        signature: bytes,
        ctx: CallContext,
        request: Message | None,
    ) -> PushChallenge:
        """Approve or deny a pending push challenge with the device's signature over
        `respond_message(id, nonce, approve)`. Refused (and audited): NotFoundError for an
        unknown challenge; PermissionDeniedError for an unknown device, a device of another user
        or a bad signature; FailedPreconditionError once the challenge is final (a replay) or
        expired. Of concurrent answers one wins."""
        challenge_uuid = parse_id(push_challenge_id, "push_challenge_id")
        device_uuid = parse_id(device_id, "device_id")
        validate_signature(signature)
        async with self._uow() as tx:
            outcome = await self._answer(
                tx, challenge_uuid, device_uuid, approve, signature, ctx, request
            )
            if isinstance(outcome, _Refusal):
                await self._refused(
                    tx,
                    "identity.pushChallenge.respond",
                    str(challenge_uuid),
                    outcome,
                    ctx,
                    request,
                    diff={"device_id": str(device_uuid), "approve": approve},
                )
        if isinstance(outcome, _Refusal):
            raise outcome.error
        return outcome

    async def _answer(
        self,
        tx: IdentityTransaction,
        challenge_id: uuid.UUID,
        device_id: uuid.UUID,
        approve: bool,
        signature: bytes,
        ctx: CallContext,
        request: Message | None,
    ) -> PushChallenge | _Refusal:
        """Check the device and its signature, then record its answer (audited)."""
        challenge = await tx.push_challenge_by_id(challenge_id)
        device = await tx.push_device_by_id(device_id)
        if challenge is None:
            return _Refusal(NotFoundError("no such push challenge"), "unknown_challenge", device)
        if device is None:
            return _Refusal(PermissionDeniedError(NOT_THIS_DEVICE), "unknown_device", None)
        if device.user_id != challenge.user_id:
            return _Refusal(PermissionDeniedError(NOT_THIS_DEVICE), "foreign_device", device)
        signed = respond_message(challenge.id, challenge.nonce, approve)
        if not signature_valid(device.public_key, signature, signed):
            return _Refusal(PermissionDeniedError(BAD_SIGNATURE), "bad_signature", device)
        now = self._clock()
        current = await self._settle(tx, challenge, now, ctx)
        if current.state is PushState.PENDING:
            answer = PushState.APPROVED if approve else PushState.DENIED
            answered = await tx.finish_push_challenge(challenge.id, answer, now, device.id)
            if answered is not None:
                await self._record(
                    tx,
                    f"identity.pushChallenge.{'approve' if approve else 'deny'}",
                    answered.id,
                    answered.user_id,
                    ctx,
                    request,
                    actor=answered.user_id,
                    diff={"device_id": str(device.id)},
                )
                return answered
            # Another replica answered between our read and our update.
            current = await tx.push_challenge_by_id(challenge.id) or current
        final = FailedPreconditionError(f"push challenge is {current.state.value} already")
        reason = "expired" if current.state is PushState.EXPIRED else "answered_already"
        return _Refusal(final, reason, device)

    async def watch(
        self, push_challenge_id: str, challenge_token: str, ctx: CallContext
    ) -> AsyncIterator[PushChallenge]:
        """The push challenge now, then again on every change of state, until it is APPROVED,
        DENIED or EXPIRED (then the iteration ends; at the latest at its expiry). Reads the
        database every `policy.watch_poll`, so answers given through any replica are seen.
        Raises UnauthenticatedError for an unknown sign-in challenge token, NotFoundError when
        the push challenge is not one of that sign-in."""
        challenge_uuid = parse_id(push_challenge_id, "push_challenge_id")
        if not challenge_token:
            raise UnauthenticatedError(CHALLENGE_GONE)
        async with self._uow() as tx:
            sign_in = await tx.sign_in_challenge_by_token_hash(hash_token(challenge_token))
            challenge = await tx.push_challenge_by_id(challenge_uuid)
        if sign_in is None:
            raise UnauthenticatedError(CHALLENGE_GONE)
        if challenge is None or challenge.sign_in_challenge_id != sign_in.id:
            raise NotFoundError("no such push challenge", field="push_challenge_id")
        seen: PushState | None = None
        while True:
            async with self._uow() as tx:
                current = await tx.push_challenge_by_id(challenge_uuid)
                if current is None:  # the sign-in challenge and its pushes were deleted
                    raise NotFoundError("no such push challenge", field="push_challenge_id")
                current = await self._settle(tx, current, self._clock(), ctx)
            if current.state is not seen:
                seen = current.state
                yield current
            if current.state is not PushState.PENDING:
                return
            await asyncio.sleep(self.policy.watch_poll.total_seconds())

    async def _settle(
        self, tx: IdentityTransaction, challenge: PushChallenge, now: dt.datetime, ctx: CallContext
    ) -> PushChallenge:
        """The challenge as of `now`: a PENDING one past its expiry is stored (and audited) as
        EXPIRED here; if another replica finished it meanwhile, its stored state."""
        if challenge.state is not PushState.PENDING or challenge.state_at(now) is PushState.PENDING:
            return challenge
        expired = await tx.finish_push_challenge(challenge.id, PushState.EXPIRED, now)
        if expired is None:
            return await tx.push_challenge_by_id(challenge.id) or challenge
        await self._record(
            tx,
            "identity.pushChallenge.expire",
            expired.id,
            expired.user_id,
            ctx,
            diff={"reason": "timeout"},
        )
        return expired

    async def _open_sign_in(
        self, tx: IdentityTransaction, token: str, now: dt.datetime
    ) -> SignInChallenge:
        sign_in = await tx.sign_in_challenge_by_token_hash(hash_token(token))
        if sign_in is None or not sign_in.is_open(now) or sign_in.attempts >= MAX_WRONG_CODES:
            raise UnauthenticatedError(CHALLENGE_GONE)
        return sign_in

    async def _enrolling_user(self, principal: principal_pb2.Principal) -> uuid.UUID:
        """The caller's user id once allowed to change their own second factors: a person in
        their own signed-in session (`identity.mfa.enroll` is an `own` permission every account
        has, org or not, as for TOTP), never an API key, never while impersonated (an admin
        must not plant a device)."""
        session_of(principal)
        if principal.impersonator_id:
            raise PermissionDeniedError("second factors cannot be changed while impersonating")
        return uuid.UUID(principal.actor_id)

    async def _record(
        self,
        tx: IdentityTransaction,
        action: str,
        challenge_id: uuid.UUID,
        user_id: uuid.UUID,
        ctx: CallContext,
        request: Message | None = None,
        *,
        actor: uuid.UUID | None = None,
        diff: dict[str, object],
    ) -> None:
        """Audit a state change of a push challenge in the user's org (actor: `actor`, else the
        caller, else the system)."""
        org_id = await tx.first_org_of(user_id)
        await tx.record(
            Change(
                action=action,
                resource_type="identity.pushChallenge",
                resource_id=str(challenge_id),
                org_id=str(org_id or ""),
                actor_id=str(actor or ""),
                request=request,
                diff=diff,
            ),
            ctx,
        )

    async def _refused(
        self,
        tx: IdentityTransaction,
        action: str,
        challenge_id: str,
        refusal: _Refusal,
        ctx: CallContext,
        request: Message | None,
        *,
        diff: dict[str, object],
    ) -> None:
        """Audit a refused device call (outcome failure), on the device's user when known."""
        device = refusal.device
        org_id = await tx.first_org_of(device.user_id) if device else None
        await tx.record(
            Change(
                action=action,
                resource_type="identity.pushChallenge",
                resource_id=challenge_id,
                org_id=str(org_id or ""),
                actor_id=str(device.user_id) if device else "",
                outcome=events_pb2.AUDIT_OUTCOME_FAILURE,
                request=request,
                diff={**diff, "reason": refusal.reason},
            ),
            ctx,
        )
