"""Sign-in throttling rules: which counters an attempt touches, when they lock, for how long.

Design (issue 7): every failed sign-in adds one row per counter key (the account, i.e. the
normalised e-mail whether or not it names a user, and the client IP) to `sign_in_failures` in
PostgreSQL, so every replica sees the same counts. A key with `max_failures` rows inside the
sliding `window` gets a row in `sign_in_lockouts` (until now + `lockout`) and its failure rows are
consumed. While a key is locked, attempts are refused before any password work. A successful
sign-in clears the account key (never the IP key). Keys are sha256 digests, so the throttle tables
hold no e-mail address or IP in clear.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ThrottleKey", "ThrottlePolicy", "ThrottleScope", "retry_after_seconds", "throttle_key"]


class ThrottleScope(StrEnum):
    """What a counter counts failures of."""

    ACCOUNT = "account"
    IP = "ip"


@dataclass(frozen=True, slots=True)
class ThrottleKey:
    """One counter: its scope and the digest that names it in the database."""

    scope: ThrottleScope
    digest: str


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Limits per sliding window and the lockout length (defaults: 10 per account and 50 per IP
    in 15 minutes, locked for 15 minutes)."""

    max_failures_per_account: int = 10
    max_failures_per_ip: int = 50
    window: dt.timedelta = dt.timedelta(minutes=15)
    lockout: dt.timedelta = dt.timedelta(minutes=15)

    def __post_init__(self) -> None:
        if self.max_failures_per_account < 1 or self.max_failures_per_ip < 1:
            raise ValueError("failure limits must be at least 1")
        if self.window <= dt.timedelta(0) or self.lockout <= dt.timedelta(0):
            raise ValueError("window and lockout must be positive")

    def limit(self, scope: ThrottleScope) -> int:
        """The number of failures within the window that locks a key of `scope`."""
        if scope is ThrottleScope.ACCOUNT:
            return self.max_failures_per_account
        return self.max_failures_per_ip

    def keys(self, account: str, ip: str) -> list[ThrottleKey]:
        """The counters an attempt touches: the account always, the IP when the edge gave one."""
        keys = [throttle_key(ThrottleScope.ACCOUNT, account)]
        if ip:
            keys.append(throttle_key(ThrottleScope.IP, ip))
        return keys


def throttle_key(scope: ThrottleScope, value: str) -> ThrottleKey:
    """The counter key of an account (case-insensitive) or an IP address."""
    normalised = value.strip().lower()
    digest = hashlib.sha256(f"{scope.value}:{normalised}".encode()).hexdigest()
    return ThrottleKey(scope=scope, digest=digest)


def retry_after_seconds(locked_until: dt.datetime, now: dt.datetime) -> int:
    """Whole seconds until the lockout ends, at least 1."""
    return max(1, math.ceil((locked_until - now).total_seconds()))
