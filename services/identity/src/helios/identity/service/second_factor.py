"""The second-factor gate of sign-in (A3, A9): whether a sign-in that passed its first factor
needs a second one, and the challenge it then has to answer."""

from __future__ import annotations

import datetime as dt
import uuid

from helios.identity.domain.model import PendingSecondFactor, SignInMethod, User
from helios.identity.domain.second_factor import SignInChallenge
from helios.identity.domain.tokens import hash_token, new_one_time_token
from helios.identity.ports import AuthConfigSource, Clock, IdentityTransaction
from helios.identity.service.remembered_devices import RememberedDevices
from helios.kernel.changes import Change
from helios.kernel.context import CallContext

__all__ = ["CHALLENGE_TTL", "MAX_WRONG_CODES", "ChallengeGate"]

CHALLENGE_TTL = dt.timedelta(minutes=10)
MAX_WRONG_CODES = 5
"""Wrong codes (of any method) after which a challenge is closed: the user signs in again."""


class ChallengeGate:
    """A SecondFactorGate: a challenge is needed when the user has TOTP or push devices, or one
    of their orgs or the deployment requires a second factor, unless the sign-in comes from one
    of their remembered devices. A user who must have one but has enrolled none answers by
    e-mail (EMAIL_OTP is always offered)."""

    def __init__(self, clock: Clock, config: AuthConfigSource, devices: RememberedDevices) -> None:
        self._clock = clock
        self._config = config
        self._devices = devices

    async def challenge(
        self,
        tx: IdentityTransaction,
        user: User,
        first_factor: SignInMethod,
        device_token: str,
        ctx: CallContext,
    ) -> PendingSecondFactor | None:
        methods = await self._methods(tx, user)
        required = (
            SignInMethod.TOTP in methods
            or SignInMethod.PUSH in methods
            or self._config.current().mfa_required
            or (await tx.auth_policy_of_user(user.id)).require_mfa
        )
        if not required or await self._devices.recognise(tx, user, device_token, ctx):
            return None
        now = self._clock()
        token = new_one_time_token()
        challenge = SignInChallenge(
            id=uuid.uuid4(),
            user_id=user.id,
            first_factor=first_factor,
            methods=methods,
            created_at=now,
            expires_at=now + CHALLENGE_TTL,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
        )
        await tx.add_sign_in_challenge(challenge, hash_token(token))
        await tx.record(
            Change(
                action="identity.user.secondFactorRequired",
                resource_type="identity.signInChallenge",
                resource_id=str(challenge.id),
                actor_id=str(user.id),
                diff={
                    "first_factor": first_factor.value,
                    "methods": [method.value for method in methods],
                },
            ),
            ctx,
        )
        return PendingSecondFactor(token=token, methods=methods, expires_at=challenge.expires_at)

    async def _methods(self, tx: IdentityTransaction, user: User) -> tuple[SignInMethod, ...]:
        """What the user can answer with, strongest first; e-mail always."""
        totp = await tx.totp_of(user.id)
        methods = []
        if totp is not None and totp.confirmed:
            methods.append(SignInMethod.TOTP)
        if await tx.backup_codes_remaining(user.id) > 0:
            methods.append(SignInMethod.BACKUP_CODE)
        if await tx.push_device_count(user.id) > 0:
            methods.append(SignInMethod.PUSH)
        methods.append(SignInMethod.EMAIL_OTP)
        return tuple(methods)
