"""The one table mapping domain errors to gRPC status codes (P1, conventions rule 5)."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from helios.kernel.errors import (
    AlreadyExistsError,
    DomainError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from helios.kernel.status import rich_status, status_for

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("error_type", "code"),
    [
        (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
        (NotFoundError, grpc.StatusCode.NOT_FOUND),
        (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
        (UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
        (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
        (FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
        (ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (UnavailableError, grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_p1_status_for_maps_each_domain_error(
    error_type: type[DomainError], code: grpc.StatusCode
) -> None:
    assert status_for(error_type("refused")) == code


def test_p1_every_domain_error_subclass_is_mapped() -> None:
    for error_type in DomainError.__subclasses__():
        assert status_for(error_type("refused")) != grpc.StatusCode.UNKNOWN, error_type


def test_p1_subclass_maps_through_nearest_base() -> None:
    class WeakPasswordError(InvalidArgumentError):
        """A service-specific refusal."""

    assert status_for(WeakPasswordError("too weak")) == grpc.StatusCode.INVALID_ARGUMENT


def test_p1_bare_domain_error_is_unknown() -> None:
    assert status_for(DomainError("odd")) == grpc.StatusCode.UNKNOWN


def test_p1_domain_error_carries_message_and_field() -> None:
    error = InvalidArgumentError("email is required", field="email")
    assert error.message == "email is required"
    assert error.field == "email"
    assert str(error) == "email is required"
    assert NotFoundError("gone").field is None


def test_a1_resource_exhausted_carries_retry_info() -> None:
    """A1: a rate limit with a known delay carries a google.rpc.RetryInfo detail."""
    status = rich_status(ResourceExhaustedError("slow down", retry_after_seconds=42))
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert status.message == "slow down"
    (detail,) = status.details
    retry = error_details_pb2.RetryInfo()
    assert detail.Unpack(retry)
    assert retry.retry_delay.seconds == 42
    assert list(rich_status(ResourceExhaustedError("no hint")).details) == []
