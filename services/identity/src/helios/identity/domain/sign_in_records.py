"""Sign-in records (S4, S5): login events, history cursors and device sightings."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass

__all__ = ["DeviceNovelty", "DeviceSighting", "LoginCursor", "LoginEvent", "LoginOutcome"]


class LoginOutcome(enum.StrEnum):
    """How a sign-in attempt ended (stored as its value)."""

    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class LoginEvent:
    """One sign-in attempt of a known user. `device_id` is the device fingerprint ('' when
    unknown); `failure_reason` is '' on success; `id` is assigned by the store."""

    user_id: uuid.UUID
    occurred_at: dt.datetime
    method: str
    outcome: LoginOutcome
    ip: str = ""
    city: str = ""
    country: str = ""
    user_agent: str = ""
    device_id: str = ""
    failure_reason: str = ""
    id: int = 0


@dataclass(frozen=True, slots=True)
class LoginCursor:
    """Where a page of login history ends: events strictly older come next (ties on time are
    broken by id, newest first)."""

    occurred_at: dt.datetime
    id: int


@dataclass(frozen=True, slots=True)
class DeviceSighting:
    """A user signed in from device `device_id` (a fingerprint) at `at`."""

    user_id: uuid.UUID
    device_id: str
    browser: str
    at: dt.datetime
    ip: str = ""
    city: str = ""
    country: str = ""


class DeviceNovelty(enum.Enum):
    """What a sighting told about the device."""

    KNOWN = "known"  # seen before for this user
    NEW = "new"  # never seen for this user, who had other known devices
    FIRST = "first"  # the user had no known device at all (their first sign-in)
