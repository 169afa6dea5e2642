"""The container health probe's arguments and verdicts (P4); its I/O runs in
tests/integration/test_health_listener.py."""

from __future__ import annotations

import pytest
from grpc_health.v1 import health_pb2

from helios.kernel.health_probe import Outcome, grpc_outcome, http_outcome, parse_args

pytestmark = pytest.mark.unit

Status = health_pb2.HealthCheckResponse


def test_p4_probe_parses_a_grpc_check_with_a_service() -> None:
    args = parse_args(["--port", "8081", "--service", "helios.proto.authz.v1.AuthzService"])
    assert (args.port, args.service, args.http, args.timeout) == (
        8081,
        "helios.proto.authz.v1.AuthzService",
        None,
        3.0,
    )


def test_p4_probe_parses_an_http_check() -> None:
    args = parse_args(["--http", "http://127.0.0.1:8080/healthz", "--timeout", "1.5"])
    assert (args.port, args.http, args.timeout) == (None, "http://127.0.0.1:8080/healthz", 1.5)


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        ([], "one of the arguments --port --http is required"),
        (["--port", "1", "--http", "http://x/"], "not allowed with argument"),
        (["--port", "0"], "--port must be between 1 and 65535"),
        (["--port", "65536"], "--port must be between 1 and 65535"),
        (["--port", "eighty"], "invalid int value"),
        (["--http", "file:///etc/passwd"], "--http must be an http:// or https:// URL"),
        (["--http", "http://x/", "--service", "a"], "--service applies to --port only"),
        (["--port", "8081", "--timeout", "0"], "--timeout must be positive"),
    ],
)
def test_p4_probe_refuses_bad_arguments_with_status_2(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


@pytest.mark.parametrize(
    ("status", "healthy", "name"),
    [
        (Status.SERVING, True, "SERVING"),
        (Status.NOT_SERVING, False, "NOT_SERVING"),
        (Status.UNKNOWN, False, "UNKNOWN"),
        (Status.SERVICE_UNKNOWN, False, "SERVICE_UNKNOWN"),
        (99, False, "99"),
    ],
)
def test_p4_probe_is_healthy_on_serving_only(status: int, healthy: bool, name: str) -> None:
    assert grpc_outcome("127.0.0.1:8081", "", status) == Outcome(
        healthy, f"grpc health 127.0.0.1:8081 service '': {name}"
    )


@pytest.mark.parametrize(
    ("status", "healthy"), [(200, True), (204, True), (301, False), (404, False), (503, False)]
)
def test_p4_probe_http_is_healthy_on_2xx_only(status: int, healthy: bool) -> None:
    assert http_outcome("http://127.0.0.1:8080/healthz", status) == Outcome(
        healthy, f"http http://127.0.0.1:8080/healthz: {status}"
    )
