"""The one table mapping gRPC status to HTTP, and JSON error bodies (P2)."""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from starlette.responses import JSONResponse

from helios.gateway.errors import EdgeError, error_response, http_status_for, rpc_error_response

pytestmark = pytest.mark.unit


def _body(response: JSONResponse) -> dict[str, object]:
    parsed: dict[str, object] = json.loads(bytes(response.body))
    return parsed


def _rpc_error(code: grpc.StatusCode, details: str | None) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.OK, 200),
        (grpc.StatusCode.CANCELLED, 499),
        (grpc.StatusCode.UNKNOWN, 500),
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.ALREADY_EXISTS, 409),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.UNAUTHENTICATED, 401),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.FAILED_PRECONDITION, 400),
        (grpc.StatusCode.ABORTED, 409),
        (grpc.StatusCode.OUT_OF_RANGE, 400),
        (grpc.StatusCode.UNIMPLEMENTED, 501),
        (grpc.StatusCode.INTERNAL, 500),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DATA_LOSS, 500),
    ],
)
def test_p2_grpc_status_maps_to_http(code: grpc.StatusCode, status: int) -> None:
    assert http_status_for(code) == status


def test_p2_every_grpc_status_has_an_http_status() -> None:
    for code in grpc.StatusCode:
        assert 200 <= http_status_for(code) <= 599


def test_p2_error_response_has_code_status_and_message() -> None:
    response = error_response(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json")
    assert response.status_code == 415
    assert response.media_type == "application/json"
    assert _body(response) == {
        "error": {
            "code": "UNSUPPORTED_MEDIA_TYPE",
            "status": 415,
            "message": "send the body as application/json",
        }
    }


def test_p2_upstream_refusal_shown_with_its_details() -> None:
    response = rpc_error_response(_rpc_error(grpc.StatusCode.NOT_FOUND, "user not found"))
    assert response.status_code == 404
    assert _body(response) == {
        "error": {"code": "NOT_FOUND", "status": 404, "message": "user not found"}
    }


def test_p2_upstream_refusal_without_details_uses_code_name() -> None:
    response = rpc_error_response(_rpc_error(grpc.StatusCode.PERMISSION_DENIED, None))
    assert response.status_code == 403
    assert _body(response)["error"] == {
        "code": "PERMISSION_DENIED",
        "status": 403,
        "message": "permission_denied",
    }


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS]
)
def test_p2_internal_upstream_details_never_reach_the_client(code: grpc.StatusCode) -> None:
    leak = "psycopg.errors.UndefinedTable at /srv/identity/store.py:42"
    response = rpc_error_response(_rpc_error(code, leak))
    assert response.status_code == 500
    assert b"psycopg" not in bytes(response.body)
    assert _body(response)["error"] == {
        "code": code.name,
        "status": 500,
        "message": "internal error",
    }


def test_p2_unavailable_backend_asks_to_retry() -> None:
    response = rpc_error_response(
        _rpc_error(grpc.StatusCode.UNAVAILABLE, "connect failed: 10.0.0.3")
    )
    assert response.status_code == 503
    body = _body(response)
    assert body["error"] == {
        "code": "UNAVAILABLE",
        "status": 503,
        "message": "a backend service is unavailable; retry later",
    }


def test_p2_edge_error_carries_status_code_and_message() -> None:
    error = EdgeError(413, "PAYLOAD_TOO_LARGE", "request body exceeds 10 bytes")
    assert (error.status, error.code, error.message) == (
        413,
        "PAYLOAD_TOO_LARGE",
        "request body exceeds 10 bytes",
    )
    assert str(error) == "request body exceeds 10 bytes"


def _with_status(code: grpc.StatusCode, *details: Message) -> grpc.aio.AioRpcError:
    status = status_pb2.Status(code=code.value[0], message="slow down")
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    trailing = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details="slow down")


def test_a1_retry_info_becomes_retry_after() -> None:
    """A1: a throttled upstream call (RetryInfo of 899.2 s) answers 429 with Retry-After: 900
    and the RetryInfo among the JSON details."""
    info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=899, nanos=2))
    response = rpc_error_response(_with_status(grpc.StatusCode.RESOURCE_EXHAUSTED, info))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "900"
    error = _body(response)["error"]
    assert isinstance(error, dict)
    assert error["details"][0]["@type"].endswith("google.rpc.RetryInfo")


def test_a1_no_retry_after_without_retry_info() -> None:
    """A1: a refusal without RetryInfo carries no Retry-After."""
    bad = error_details_pb2.BadRequest()
    response = rpc_error_response(_with_status(grpc.StatusCode.INVALID_ARGUMENT, bad))
    assert response.status_code == 400
    assert "retry-after" not in response.headers
