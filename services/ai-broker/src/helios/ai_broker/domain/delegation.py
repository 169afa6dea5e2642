"""The rules of a delegation to an AI (I1, I2): who may delegate, its purpose, its lifetime, and a
narrowing that never reaches beyond what the user holds."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable

from helios.kernel.errors import InvalidArgumentError, PermissionDeniedError
from helios.proto.common.v1 import principal_pb2

__all__ = [
    "API_KEY_SESSION_PREFIX",
    "DEFAULT_TTL",
    "MAX_NARROWING",
    "MAX_PURPOSE_CHARS",
    "MAX_TTL",
    "MIN_TTL",
    "beyond_grants",
    "require_not_ai",
    "require_person",
    "session_lifetime",
    "validate_narrowing",
    "validate_purpose",
]

API_KEY_SESSION_PREFIX = "apikey:"
"""Identity's principals of API keys carry `apikey:<key id>` as their session id."""
DEFAULT_TTL = dt.timedelta(hours=24)
MAX_TTL = dt.timedelta(hours=24)
MIN_TTL = dt.timedelta(minutes=1)
MAX_PURPOSE_CHARS = 500
MAX_NARROWING = 100
_SCOPE_RANK = {"own": 1, "team": 2, "any": 3}  # each reaches what the ones before it reach
_PART = r"[a-z][a-zA-Z0-9]{0,62}"
_ENTRY = re.compile(rf"({_PART}\.{_PART}\.{_PART})(?::(own|team|any))?")


def require_not_ai(principal: principal_pb2.Principal) -> None:
    """Raise PermissionDeniedError for an AI principal: managing AI sessions is for people."""
    if principal.actor_type == principal_pb2.ACTOR_TYPE_AI:
        raise PermissionDeniedError("an AI cannot manage AI sessions; a person must")


def require_person(principal: principal_pb2.Principal) -> None:
    """Raise PermissionDeniedError unless `principal` is a person in a real user session of
    their own: not an AI, not an API key, not an impersonation (none may mint delegations)."""
    require_not_ai(principal)
    if principal.actor_type != principal_pb2.ACTOR_TYPE_USER or not principal.session_id:
        raise PermissionDeniedError("only a person in a user session can delegate to an AI")
    if principal.session_id.startswith(API_KEY_SESSION_PREFIX):
        raise PermissionDeniedError("an API key cannot create AI sessions")
    if principal.impersonator_id:
        raise PermissionDeniedError("AI sessions cannot be created while impersonating")


def validate_purpose(purpose: str) -> str:
    """The trimmed purpose: 1..MAX_PURPOSE_CHARS printable characters."""
    cleaned = purpose.strip()
    if not cleaned or len(cleaned) > MAX_PURPOSE_CHARS or not cleaned.isprintable():
        raise InvalidArgumentError(
            f"purpose must be 1-{MAX_PURPOSE_CHARS} printable characters", field="purpose"
        )
    return cleaned


def session_lifetime(ttl: dt.timedelta | None) -> dt.timedelta:
    """How long a new AI session lasts: DEFAULT_TTL when absent or zero, else MIN_TTL..MAX_TTL."""
    if ttl is None or ttl == dt.timedelta(0):
        return DEFAULT_TTL
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise InvalidArgumentError(
            "ttl must be between 1 minute and 24 hours (absent for 24 hours)", field="ttl"
        )
    return ttl


def validate_narrowing(entries: Iterable[str]) -> tuple[str, ...]:
    """The distinct entries, sorted: at most MAX_NARROWING of `<module>.<entity>.<verb>`, each
    optionally with `:own`, `:team` or `:any` (no wildcard). Empty means no narrowing."""
    distinct = sorted(set(entries))
    if len(distinct) > MAX_NARROWING:
        raise InvalidArgumentError(
            f"an AI session may be narrowed to at most {MAX_NARROWING} permissions",
            field="permissions",
        )
    for entry in distinct:
        if _ENTRY.fullmatch(entry) is None:
            raise InvalidArgumentError(
                f"{entry[:100]!r} is not a permission key <module>.<entity>.<verb> with an"
                " optional :own, :team or :any",
                field="permissions",
            )
    return tuple(distinct)


def beyond_grants(narrowing: Iterable[str], grants: Collection[tuple[str, str]]) -> list[str]:
    """The entries of a validated narrowing the user does not hold now: a key they hold at no
    scope, or a scope wider than every grant of it they have (a narrower one is fine)."""
    widest: dict[str, int] = {}
    for key, scope in grants:
        widest[key] = max(widest.get(key, 0), _SCOPE_RANK.get(scope, 0))
    missing = []
    for entry in narrowing:
        key, _, scope = entry.partition(":")
        needed = _SCOPE_RANK[scope] if scope else 1
        if widest.get(key, 0) < needed:
            missing.append(entry)
    return missing
