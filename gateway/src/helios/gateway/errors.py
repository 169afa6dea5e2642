"""Edge errors and the one table mapping gRPC status codes to HTTP, with JSON error bodies."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from starlette.responses import JSONResponse

__all__ = ["EdgeError", "error_response", "http_status_for", "rpc_error_response"]

# The grpc-gateway / Envoy transcoder convention.
_HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
# Upstream details of these are not shown to clients.
_OPAQUE = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DATA_LOSS}


class EdgeError(Exception):
    """A request refused at the edge, before any service is called."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def http_status_for(code: grpc.StatusCode) -> int:
    """The HTTP status of a gRPC status code."""
    return _HTTP_STATUS.get(code, 500)


# Imported for its side effect too: the google.rpc detail types must be in the default pool
# for their Any-packed values to render as JSON.
_DETAIL_TYPES = (
    error_details_pb2.BadRequest,
    error_details_pb2.ErrorInfo,
    error_details_pb2.RetryInfo,
)
_DETAILS_KEY = "grpc-status-details-bin"


def error_response(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    """`{"error": {"code", "status", "message"[, "details"]}}` with the given HTTP status;
    `details` are google.rpc error details in their JSON form (with `@type`)."""
    body: dict[str, Any] = {"code": code, "status": status, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status)


def _status(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    for key, value in error.trailing_metadata() or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except Exception:  # an unreadable detail must not hide the error itself
                return None
            return status
    return None


def _retry_after(status: status_pb2.Status) -> int | None:
    """Whole seconds of the first RetryInfo detail, rounded up, or None."""
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            delay = info.retry_delay
            return max(0, delay.seconds + (1 if delay.nanos > 0 else 0))
    return None


def rpc_error_response(error: grpc.aio.AioRpcError) -> JSONResponse:
    """The HTTP answer for a failed upstream call; a RetryInfo detail becomes `Retry-After`."""
    code = error.code()
    message = "internal error" if code in _OPAQUE else (error.details() or code.name.lower())
    if code == grpc.StatusCode.UNAVAILABLE:
        message = "a backend service is unavailable; retry later"
    status = None if code in _OPAQUE else _status(error)
    details: list[dict[str, Any]] = []
    if status is not None:
        try:
            details = [json_format.MessageToDict(detail) for detail in status.details]
        except Exception:  # an unknown detail type must not hide the error itself
            details = []
    response = error_response(http_status_for(code), code.name, message, details)
    retry_after = _retry_after(status) if status is not None else None
    if retry_after is not None:
        response.headers["retry-after"] = str(retry_after)
    return response
