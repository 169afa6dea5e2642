"""Background work that must outlive outages: retry with capped backoff until done or stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

__all__ = ["retry_until_done"]

_FIRST_DELAY, _MAX_DELAY = 0.2, 5.0


async def retry_until_done(
    what: str, attempt: Callable[[], Awaitable[None]], stop: asyncio.Event, log: logging.Logger
) -> None:
    """Run `attempt` until it returns or `stop` is set; a failure is logged (as `what`) and
    retried after 0.2 s, doubling up to 5 s. A consumer's attempt returns when `stop` is set."""
    delay = _FIRST_DELAY
    while not stop.is_set():
        try:
            await attempt()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(f"{what} failed; retrying", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, _MAX_DELAY)
