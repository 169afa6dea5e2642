"""`python -m helios.kernel.health_probe`: a container health check, exit 0 when healthy, else 1."""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["Outcome", "grpc_outcome", "http_outcome", "main", "parse_args", "probe"]

_HOST = "127.0.0.1"  # the process's own plaintext health listener, never another pod


@dataclass(frozen=True, slots=True)
class Outcome:
    """The verdict of one probe and the one line that explains it."""

    healthy: bool
    message: str


def grpc_outcome(target: str, service: str, status: int) -> Outcome:
    """SERVING is healthy; any other grpc.health.v1 status (NOT_SERVING, UNKNOWN...) is not."""
    statuses = health_pb2.HealthCheckResponse.ServingStatus
    name = statuses.Name(status) if status in statuses.values() else str(status)
    return Outcome(
        status == health_pb2.HealthCheckResponse.SERVING,
        f"grpc health {target} service {service!r}: {name}",
    )


def http_outcome(url: str, status: int) -> Outcome:
    """A 2xx answer is healthy; anything else is not."""
    return Outcome(200 <= status < 300, f"http {url}: {status}")


def _probe_grpc(port: int, service: str, timeout: float) -> Outcome:
    target = f"{_HOST}:{port}"
    # a proxy from the environment (http_proxy...) must not stand between the probe and its pod
    with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
        # types-grpcio-health-checking leaves the HealthStub methods untyped.
        stub: Any = health_pb2_grpc.HealthStub(channel)
        try:
            reply: health_pb2.HealthCheckResponse = stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError as exc:
            code_of = getattr(exc, "code", None)  # the sync stub's errors are also grpc.Call
            code = code_of() if callable(code_of) else None
            label = code.name if isinstance(code, grpc.StatusCode) else "ERROR"
            return Outcome(False, f"grpc health {target} service {service!r}: {label}")
    return grpc_outcome(target, service, reply.status)


def _probe_http(url: str, timeout: float) -> Outcome:
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy either
    try:
        # the scheme is checked by parse_args: http or https only, never file: or ftp:
        with direct.open(url, timeout=timeout) as response:
            return http_outcome(url, response.status)
    except urllib.error.HTTPError as exc:
        return http_outcome(url, exc.code)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Outcome(False, f"http {url}: unreachable ({reason})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """`--port N [--service NAME]` (gRPC health on 127.0.0.1:N, plaintext) or `--http URL`;
    exits with status 2 and a usage line on bad arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m helios.kernel.health_probe",
        description="Exit 0 if the local process reports healthy, else 1.",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--port", type=int, help="the plaintext gRPC health listener's port")
    target.add_argument("--http", metavar="URL", help="an http(s) URL that answers 2xx")
    parser.add_argument(
        "--service", default="", help="gRPC service name to check ('' = the whole server)"
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    args = parser.parse_args(argv)
    if args.port is not None and not 0 < args.port <= 65535:
        parser.error("--port must be between 1 and 65535")
    if args.http is not None:
        if not args.http.startswith(("http://", "https://")):
            parser.error("--http must be an http:// or https:// URL")
        if args.service:
            parser.error("--service applies to --port only")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def probe(args: argparse.Namespace) -> Outcome:
    """Run the probe the parsed arguments describe."""
    if args.http is not None:
        return _probe_http(args.http, args.timeout)
    return _probe_grpc(args.port, args.service, args.timeout)


def main(argv: list[str] | None = None) -> int:
    """Probe, print one line (stdout when healthy, stderr when not), return the exit status."""
    outcome = probe(parse_args(argv))
    print(outcome.message, file=sys.stdout if outcome.healthy else sys.stderr)
    return 0 if outcome.healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
