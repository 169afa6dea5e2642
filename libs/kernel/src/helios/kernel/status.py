"""The one table mapping domain errors to gRPC status codes."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

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

__all__ = ["DETAILS_KEY", "rich_status", "status_for"]

_STATUS: dict[type[DomainError], grpc.StatusCode] = {
    InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    NotFoundError: grpc.StatusCode.NOT_FOUND,
    AlreadyExistsError: grpc.StatusCode.ALREADY_EXISTS,
    UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
    ResourceExhaustedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    UnavailableError: grpc.StatusCode.UNAVAILABLE,
}


def status_for(error: DomainError) -> grpc.StatusCode:
    """The gRPC status code of a domain error (its nearest mapped base class)."""
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return grpc.StatusCode.UNKNOWN


# Trailing metadata key of a serialized google.rpc.Status (the grpc-status convention).
DETAILS_KEY = "grpc-status-details-bin"


def rich_status(error: DomainError) -> status_pb2.Status:
    """The google.rpc.Status of a domain error; an error naming a field carries a BadRequest
    field violation so clients (and the gateway's JSON) can point at the input; a rate limit with
    a known retry delay carries a RetryInfo."""
    code = status_for(error)
    status = status_pb2.Status(code=code.value[0], message=error.message)
    if error.field:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=error.field, description=error.message
                    )
                ]
            )
        )
        status.details.append(detail)
    if isinstance(error, ResourceExhaustedError) and error.retry_after_seconds is not None:
        retry = any_pb2.Any()
        retry.Pack(
            error_details_pb2.RetryInfo(
                retry_delay=duration_pb2.Duration(seconds=max(0, error.retry_after_seconds))
            )
        )
        status.details.append(retry)
    return status
