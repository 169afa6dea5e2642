"""The bench harness: closed-loop load, percentiles, and a table of ratios to baselines."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Call", "Figure", "drive", "measure", "percentile", "render"]

Call = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Figure:
    """One measured figure; `baselines` name the figures whose p50 it is compared with (itself
    when it is a baseline)."""

    name: str
    calls: int
    concurrency: int
    seconds: float
    p50_ms: float
    p99_ms: float
    baselines: tuple[str, ...]


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


async def drive(call: Call, calls: int, concurrency: int) -> tuple[float, list[float]]:
    """Closed loop: `concurrency` workers share `calls` calls; wall seconds and each latency."""
    latencies: list[float] = []
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1  # one event loop: no other worker runs between the test and this
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


async def measure(name: str, call: Call, calls: int, concurrency: int, *baselines: str) -> Figure:
    """Warm up briefly at the same concurrency, then measure; a failing call raises, so errors
    never count as work done."""
    await drive(call, max(concurrency, calls // 20), concurrency)
    seconds, latencies = await drive(call, calls, concurrency)
    ordered = sorted(latencies)
    p50, p99 = percentile(ordered, 0.50) * 1000, percentile(ordered, 0.99) * 1000
    return Figure(name, calls, concurrency, seconds, p50, p99, baselines)


def render(figures: list[Figure]) -> str:
    """A plain-text table with each p50 as a multiple of its baselines' p50s."""
    p50_of = {figure.name: figure.p50_ms for figure in figures}
    rows = [("figure", "calls", "in flight", "calls/s", "p50 ms", "p99 ms", "p50 vs baseline")]
    for f in figures:
        ratios = "; ".join(f"{f.p50_ms / p50_of[b]:.2f}x {b}" for b in f.baselines)
        rows.append(
            (
                f.name,
                str(f.calls),
                str(f.concurrency),
                f"{f.calls / f.seconds:,.0f}",
                f"{f.p50_ms:.2f}",
                f"{f.p99_ms:.2f}",
                "1.00x (baseline)" if f.baselines == (f.name,) else ratios,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        numbers = [c.rjust(w) for c, w in zip(row[1:-1], widths[1:-1], strict=True)]
        lines.append("  ".join([row[0].ljust(widths[0]), *numbers, row[-1]]))
    lines.insert(1, "-" * len(max(lines, key=len)))
    return "\n".join(lines)


# --- the figures ------------------------------------------------------------------------------
