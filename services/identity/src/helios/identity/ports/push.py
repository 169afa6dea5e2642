"""Storage port of push 2FA (A3): devices and push challenges."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Protocol

from helios.identity.domain.push import PushChallenge, PushDevice, PushState

__all__ = ["PushTransaction"]


class PushTransaction(Protocol):
    """Reads and writes of this area inside an identity transaction."""

    async def push_device_count(self, user_id: uuid.UUID) -> int:
        """How many push devices the user has registered (0: push is not offered)."""
        ...

    async def consume_approved_push(self, challenge_id: uuid.UUID, now: dt.datetime) -> bool:
        """True, once, when a push challenge of sign-in challenge `challenge_id` was approved by
        a device (with a valid signature) and has not expired; marks it consumed so a second
        call answers False. False when none was approved."""
        ...

    async def add_push_device(self, device: PushDevice) -> None:
        """Insert a device; raises AlreadyExistsError when the user registered this public key
        already."""
        ...

    async def push_device_by_id(self, device_id: uuid.UUID) -> PushDevice | None:
        """The device, or None."""
        ...

    async def push_devices_of(self, user_id: uuid.UUID) -> list[PushDevice]:
        """The user's devices, oldest first."""
        ...

    async def remove_push_device(self, device_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Delete the device if it is `user_id`'s; True when it was (idempotent). Challenges it
        answered keep their state."""
        ...

    async def add_push_challenge(self, challenge: PushChallenge) -> list[uuid.UUID]:
        """Insert a PENDING challenge after marking EXPIRED every other PENDING one of the same
        sign-in challenge (at `challenge.created_at`); returns the ids it so superseded. One
        PENDING challenge per sign-in challenge at a time, also across replicas."""
        ...

    async def count_push_challenges(self, sign_in_challenge_id: uuid.UUID) -> int:
        """How many push challenges the sign-in challenge has had (any state)."""
        ...

    async def push_challenge_by_id(self, push_challenge_id: uuid.UUID) -> PushChallenge | None:
        """The challenge as stored (a stale PENDING one may be past its expiry), or None."""
        ...

    async def pending_push_challenges_of(
        self, user_id: uuid.UUID, now: dt.datetime
    ) -> list[PushChallenge]:
        """The user's PENDING challenges not yet expired at `now`, newest first."""
        ...

    async def finish_push_challenge(
        self,
        push_challenge_id: uuid.UUID,
        state: PushState,
        at: dt.datetime,
        device_id: uuid.UUID | None = None,
    ) -> PushChallenge | None:
        """Move a PENDING challenge to the final `state` (answered by `device_id` for APPROVED
        or DENIED, who is marked used at `at`); APPROVED and DENIED only while unexpired at
        `at`. Returns the updated challenge, or None when it was not PENDING (or had expired)
        any more. Atomic: of concurrent calls one wins."""
        ...
