"""A durable JetStream pull consumer that acknowledges a batch only after it was handled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError

from helios.kernel.bus import Bus
from helios.kernel.retrying import retry_until_done

__all__ = ["consume"]


async def consume(
    bus: Bus,
    *,
    subject: str,
    durable: str,
    stream: str,
    handle: Callable[[list[Msg]], Awaitable[None]],
    stop: asyncio.Event,
    log: logging.Logger,
    batch_size: int = 100,
) -> None:
    """Fetch batches of `subject` from `stream` as the durable consumer `durable` (replicas
    share it) and pass each to `handle`; acknowledge the batch only after `handle` returned, so a
    crash or an error redelivers it (handlers are idempotent). Reconnects while NATS is away and
    returns when `stop` is set."""

    async def attempt() -> None:
        js = await bus.jetstream()
        subscription = await js.pull_subscribe(subject, durable=durable, stream=stream)
        try:
            while not stop.is_set():
                try:
                    messages = await subscription.fetch(batch_size, timeout=1)
                except NatsTimeoutError:
                    continue
                await handle(messages)
                # After the commit an ack may be lost without harm (redelivery is idempotent),
                # so only the last one waits for the server: one round trip per batch.
                for message in messages[:-1]:
                    await message.ack()
                if messages:
                    await messages[-1].ack_sync()
        finally:
            await subscription.unsubscribe()

    await retry_until_done(f"consumer {durable}", attempt, stop, log)
