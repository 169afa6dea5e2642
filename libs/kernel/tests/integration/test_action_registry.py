"""Registering a service's AI actions with the broker at start over mTLS (I5)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import grpc
import pytest

from helios.kernel.action_registry import action_registration_task
from helios.kernel.context import current_call
from helios.kernel.principal import AssertionVerifier, load_public_key
from helios.kernel.server import GrpcService
from helios.kernel.testing.servers import free_port
from helios.kernel.tls import CertFiles
from helios.proto.ai_broker.v1 import ai_broker_pb2, ai_broker_pb2_grpc

DEFINITIONS = [
    ai_broker_pb2.ActionDefinition(
        name="audit.event.list",
        description="List audit events",
        permission="audit.event.list",
        target_method="/helios.proto.audit.v1.AuditService/ListEvents",
        ai_allowed=True,
        summary_template="List audit events",
    )
]


class FakeBroker(ai_broker_pb2_grpc.AiBrokerServiceServicer):
    """Stands in for the broker's RegisterActions (the kernel may not depend on the broker
    service): records who called with what, and refuses with `refusal` when set."""

    def __init__(self, refusal: grpc.StatusCode | None = None) -> None:
        self.refusal = refusal
        self.calls: list[tuple[str, bool, ai_broker_pb2.RegisterActionsRequest]] = []

    async def RegisterActions(  # noqa: N802 - gRPC method name
        self, request: ai_broker_pb2.RegisterActionsRequest, context: Any
    ) -> ai_broker_pb2.RegisterActionsResponse:
        ctx = current_call()
        self.calls.append((ctx.caller, ctx.principal is None, request))
        if self.refusal is not None:
            await context.abort(self.refusal, "action audit.event.list: bad summary_template")
        return ai_broker_pb2.RegisterActionsResponse(added_names=[a.name for a in request.actions])


async def _serve(fake: FakeBroker, certs: CertFiles, public_key: Path, port: int) -> GrpcService:
    server = GrpcService("ai-broker", certs, AssertionVerifier([load_public_key(public_key)]))
    server.add_service(
        "helios.proto.ai_broker.v1.AiBrokerService",
        lambda s: ai_broker_pb2_grpc.add_AiBrokerServiceServicer_to_server(fake, s),
    )
    await server.start("127.0.0.1", port)
    return server


class FailedAttempts(logging.Handler):
    """Sets `seen` once the task logs a failed attempt (it retries)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.seen.set()


async def test_i5_registration_retries_until_the_broker_answers_then_ends(
    pki: dict[str, CertFiles], principal_keys: tuple[Path, Path]
) -> None:
    port = free_port()
    task = action_registration_task("audit", DEFINITIONS, f"localhost:{port}", pki["audit"])
    failed = FailedAttempts()
    logger = logging.getLogger("helios.kernel.action_registry")
    logger.addHandler(failed)
    try:
        running = asyncio.create_task(task(asyncio.Event()))
        await asyncio.wait_for(failed.seen.wait(), 10)  # the broker is not up yet
    finally:
        logger.removeHandler(failed)
    assert not running.done()
    fake = FakeBroker()  # type: ignore[abstract]  # other RPCs answer UNIMPLEMENTED
    server = await _serve(fake, pki["ai-broker"], principal_keys[1], port)
    try:
        await asyncio.wait_for(running, 15)
    finally:
        await server.stop(0)
    [(caller, as_service, request)] = fake.calls
    assert (caller, as_service) == ("audit", True)
    assert request.service == "audit"
    assert list(request.actions) == DEFINITIONS


async def test_i5_a_refused_action_set_is_logged_as_a_deployment_bug_and_not_retried(
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeBroker(refusal=grpc.StatusCode.INVALID_ARGUMENT)  # type: ignore[abstract]
    server = await _serve(fake, pki["ai-broker"], principal_keys[1], 0)
    task = action_registration_task(
        "identity", DEFINITIONS, f"localhost:{server.port}", pki["identity"]
    )
    try:
        with caplog.at_level(logging.ERROR, logger="helios.kernel.action_registry"):
            await asyncio.wait_for(task(asyncio.Event()), 10)
    finally:
        await server.stop(0)
    assert len(fake.calls) == 1
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "deployment bug" in record.getMessage()
    assert record.__dict__["grpc_code"] == "INVALID_ARGUMENT"


async def test_i5_registration_stops_with_the_process_while_the_broker_is_down(
    pki: dict[str, CertFiles],
) -> None:
    stop = asyncio.Event()
    task = action_registration_task(
        "keyvault", DEFINITIONS, f"localhost:{free_port()}", pki["keyvault"]
    )
    running = asyncio.create_task(task(stop))
    stop.set()
    await asyncio.wait_for(running, 5)
