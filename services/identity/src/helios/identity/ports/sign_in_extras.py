"""Storage port of magic links (A8), login history (S5) and known devices (S4). Magic-link tokens
themselves are e-mail tokens (the core port)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Protocol

from helios.identity.domain.sign_in_records import (
    DeviceNovelty,
    DeviceSighting,
    LoginCursor,
    LoginEvent,
)

__all__ = ["SignInExtrasTransaction"]


class SignInExtrasTransaction(Protocol):
    """Reads and writes of this area inside an identity transaction."""

    async def add_login_event(
        self, event: LoginEvent, keep_after: dt.datetime, keep_per_user: int
    ) -> None:
        """Insert `event`; then drop the user's events beyond their newest `keep_per_user` and a
        bounded batch of anyone's events at or before `keep_after` (the retention is enforced on
        the write path, so the table stays bounded without a background job)."""
        ...

    async def login_events_of(
        self, user_id: uuid.UUID, limit: int, after: LoginCursor | None
    ) -> list[LoginEvent]:
        """Up to `limit` events of the user, newest first, starting after `after` (from the
        newest when None)."""
        ...

    async def see_device(self, sighting: DeviceSighting, keep_per_user: int) -> DeviceNovelty:
        """Record the sighting (insert, or refresh the last-seen time and place of a known
        device) and say whether the device was known. Serialised per user for the rest of the
        transaction, so two concurrent first sign-ins cannot both count as the first. Keeps the
        user's `keep_per_user` most recently seen devices."""
        ...

    async def is_org_member(self, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Whether the user belongs to the org."""
        ...
