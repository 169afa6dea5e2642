"""Org memberships: who belongs to an org with which user type, and the paging of member lists."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid
from dataclasses import dataclass

from helios.kernel.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_MEMBER_PAGE",
    "MAX_MEMBER_PAGE",
    "OWNER_USER_TYPE",
    "MemberCursor",
    "Membership",
    "member_page_size",
    "validate_user_type",
]

OWNER_USER_TYPE = "owner"
"""The user type of an org's creator; an org always keeps at least one member of this type."""

DEFAULT_MEMBER_PAGE = 50
MAX_MEMBER_PAGE = 200
_USER_TYPE = re.compile(r"[^\x00-\x1f\x7f]{1,63}")


@dataclass(frozen=True, slots=True)
class Membership:
    """A user's place in an org; `user_type` names a user type of the org in authz."""

    org_id: uuid.UUID
    user_id: uuid.UUID
    user_type: str
    joined_at: dt.datetime


@dataclass(frozen=True, slots=True)
class MemberCursor:
    """Where a page of members ends: members are listed by (joined_at, user_id)."""

    joined_at: dt.datetime
    user_id: uuid.UUID

    def token(self) -> str:
        """The opaque page token of this position."""
        raw = f"{self.joined_at.isoformat()}|{self.user_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def parse(cls, token: str) -> MemberCursor | None:
        """The position a page token names (None for an empty token); raises
        InvalidArgumentError for a token this service did not make."""
        if not token:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            joined, user = raw.split("|")
            cursor = cls(dt.datetime.fromisoformat(joined), uuid.UUID(user))
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise InvalidArgumentError("page_token is not valid", field="page_token") from exc
        if cursor.joined_at.tzinfo is None:
            raise InvalidArgumentError("page_token is not valid", field="page_token")
        return cursor


def member_page_size(requested: int) -> int:
    """The page size to use: the default for 0, else 1..MAX_MEMBER_PAGE."""
    if requested == 0:
        return DEFAULT_MEMBER_PAGE
    if not 1 <= requested <= MAX_MEMBER_PAGE:
        raise InvalidArgumentError(
            f"page_size must be between 1 and {MAX_MEMBER_PAGE}", field="page_size"
        )
    return requested


def validate_user_type(name: str) -> str:
    """A user type name as given (1..63 characters, no control characters)."""
    if not _USER_TYPE.fullmatch(name):
        raise InvalidArgumentError(
            "user_type must be 1-63 characters without control characters", field="user_type"
        )
    return name
