"""Registering a service's declarations with another service at start: one idempotent call,
retried until it is answered; a refusal that says the deployment is wrong is logged once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from helios.kernel.clients import secure_channel
from helios.kernel.retrying import retry_until_done
from helios.kernel.server import BackgroundTask
from helios.kernel.tls import CertFiles

__all__ = ["CALL_TIMEOUT_SECONDS", "start_registration_task"]

CALL_TIMEOUT_SECONDS = 10.0
# Refusals that say the declarations or the deployment are wrong: asking again cannot help.
_DEPLOYMENT_BUGS = frozenset(
    {
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)
_Reply = TypeVar("_Reply")


def start_registration_task(
    what: str,
    service: str,
    target: str,
    certs: CertFiles,
    call: Callable[[grpc.aio.Channel], Awaitable[_Reply]],
    *,
    refused: str,
    registered: Callable[[_Reply], dict[str, object]],
    log: logging.Logger,
) -> BackgroundTask:
    """A background task that runs `call` on an mTLS channel to `target` (as `certs`) until it
    is answered, then logs `what` registered with the `registered(reply)` fields. A refusal
    that is a deployment bug (ALREADY_EXISTS, INVALID_ARGUMENT, PERMISSION_DENIED) is logged as
    the error `refused`, once, and not retried; anything else is retried."""

    async def attempt() -> None:
        async with secure_channel(target, certs) as channel:
            try:
                reply = await call(channel)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _DEPLOYMENT_BUGS:
                    raise
                log.error(
                    refused,
                    extra={
                        "service": service,
                        "grpc_code": exc.code().name,
                        "error": exc.details(),
                    },
                )
                return
        log.info(f"{what} registered", extra={"service": service, **registered(reply)})

    async def run(stop: asyncio.Event) -> None:
        await retry_until_done(f"registering the {what}", attempt, stop, log)

    return run
