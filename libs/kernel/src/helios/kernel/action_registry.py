"""Registering a service's AI actions with the AI broker at start (I5)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import grpc

from helios.kernel.clients import call_metadata, secure_channel
from helios.kernel.retrying import retry_until_done
from helios.kernel.server import BackgroundTask
from helios.kernel.tls import CertFiles
from helios.proto.ai_broker.v1 import ai_broker_pb2, ai_broker_pb2_grpc

__all__ = ["action_registration_task"]

log = logging.getLogger(__name__)

_CALL_TIMEOUT_SECONDS = 10.0
# Refusals that say the definitions or the deployment are wrong: asking again cannot help.
_DEPLOYMENT_BUGS = frozenset(
    {
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)


def action_registration_task(
    name: str,
    definitions: Sequence[ai_broker_pb2.ActionDefinition],
    broker_target: str,
    certs: CertFiles,
) -> BackgroundTask:
    """A background task that registers `definitions` as the full action set of service `name`
    with the AI broker at `broker_target` (host:port) over mTLS with `certs`, whose identity must
    be `name`. The broker replaces the service's set idempotently, so it runs at every start; it
    is retried until the broker answers and ends once done. A refusal (INVALID_ARGUMENT: a
    definition the broker's rules refuse, e.g. a never-for-AI action marked ai_allowed;
    PERMISSION_DENIED: a service the broker does not call; ALREADY_EXISTS) is a deployment
    bug: logged as an error once, not retried."""
    request = ai_broker_pb2.RegisterActionsRequest(service=name, actions=definitions)

    async def attempt() -> None:
        async with secure_channel(broker_target, certs) as channel:
            stub = ai_broker_pb2_grpc.AiBrokerServiceStub(channel)
            try:
                reply = await stub.RegisterActions(
                    request, timeout=_CALL_TIMEOUT_SECONDS, metadata=call_metadata()
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _DEPLOYMENT_BUGS:
                    raise
                log.error(
                    "the AI broker refused the action set: a deployment bug (a bad definition,"
                    " an action never allowed to an AI, or a service the broker does not call);"
                    " fix the definitions or the broker's HELIOS_ACTION_TARGETS, not retrying",
                    extra={"service": name, "grpc_code": exc.code().name, "error": exc.details()},
                )
                return
        log.info(
            "AI actions registered",
            extra={
                "service": name,
                "added": len(reply.added_names),
                "changed": len(reply.changed_names),
                "removed": len(reply.removed_names),
            },
        )

    async def run(stop: asyncio.Event) -> None:
        await retry_until_done("registering the AI actions", attempt, stop, log)

    return run
