"""Pages of AI sessions, newest first: the page size and the opaque cursor (the creation time and
id of the last session served)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from helios.kernel.errors import InvalidArgumentError

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "SessionCursor", "page_size"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_CURSOR = re.compile(r"([0-9]{1,17})\.([0-9a-f]{32})")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def page_size(requested: int) -> int:
    """DEFAULT_PAGE_SIZE for 0, else 1..MAX_PAGE_SIZE."""
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= requested <= MAX_PAGE_SIZE:
        raise InvalidArgumentError(
            f"page_size must be between 1 and {MAX_PAGE_SIZE} (0 for {DEFAULT_PAGE_SIZE})",
            field="page_size",
        )
    return requested


@dataclass(frozen=True, slots=True)
class SessionCursor:
    """Where a page ends: sessions strictly older (by creation time, then id) come next."""

    created_at: dt.datetime
    session_id: uuid.UUID

    def token(self) -> str:
        """The page token handed to the client."""
        micros = (self.created_at - _EPOCH) // dt.timedelta(microseconds=1)
        return f"{micros}.{self.session_id.hex}"

    @classmethod
    def parse(cls, token: str) -> SessionCursor | None:
        """The cursor of a page token, None for an empty one; InvalidArgumentError otherwise."""
        if not token:
            return None
        found = _CURSOR.fullmatch(token)
        if found is None:
            raise InvalidArgumentError("page_token is not a valid cursor", field="page_token")
        created_at = _EPOCH + dt.timedelta(microseconds=int(found.group(1)))
        return cls(created_at, uuid.UUID(hex=found.group(2)))
