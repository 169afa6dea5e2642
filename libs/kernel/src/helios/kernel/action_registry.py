"""Registering a service's AI actions with the AI broker at start (I5)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import grpc

from helios.kernel.clients import call_metadata
from helios.kernel.server import BackgroundTask
from helios.kernel.start_registration import CALL_TIMEOUT_SECONDS, start_registration_task
from helios.kernel.tls import CertFiles
from helios.proto.ai_broker.v1 import ai_broker_pb2, ai_broker_pb2_grpc

__all__ = ["action_registration_task"]

log = logging.getLogger(__name__)


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

    async def call(channel: grpc.aio.Channel) -> ai_broker_pb2.RegisterActionsResponse:
        reply: ai_broker_pb2.RegisterActionsResponse = await ai_broker_pb2_grpc.AiBrokerServiceStub(
            channel
        ).RegisterActions(request, timeout=CALL_TIMEOUT_SECONDS, metadata=call_metadata())
        return reply

    return start_registration_task(
        "AI actions",
        name,
        broker_target,
        certs,
        call,
        refused="the AI broker refused the action set: a deployment bug (a bad definition, an"
        " action never allowed to an AI, or a service the broker does not call); fix the"
        " definitions or the broker's HELIOS_ACTION_TARGETS, not retrying",
        registered=lambda reply: {
            "added": len(reply.added_names),
            "changed": len(reply.changed_names),
            "removed": len(reply.removed_names),
        },
        log=log,
    )
