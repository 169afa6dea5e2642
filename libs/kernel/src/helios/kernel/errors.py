"""Domain errors every service raises; pure, so domain code may raise them."""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "DomainError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
]


class DomainError(Exception):
    """A refusal the caller can act on; its message is shown to the caller: never a secret."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidArgumentError(DomainError):
    """The input is malformed or out of range; `field` names the offending field."""


class NotFoundError(DomainError):
    """The addressed object does not exist (or the caller may not know it exists)."""


class AlreadyExistsError(DomainError):
    """The object to create exists already."""


class UnauthenticatedError(DomainError):
    """Credentials are missing, wrong or expired."""


class PermissionDeniedError(DomainError):
    """The caller is known but may not do this."""


class FailedPreconditionError(DomainError):
    """The system is not in a state that allows the operation."""


class ResourceExhaustedError(DomainError):
    """A rate limit or quota was hit; `retry_after_seconds` (when known) says when a retry may
    succeed and travels as a google.rpc.RetryInfo detail."""

    def __init__(
        self, message: str, *, field: str | None = None, retry_after_seconds: int | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.retry_after_seconds = retry_after_seconds


class UnavailableError(DomainError):
    """A dependency is down; retrying later may succeed."""
