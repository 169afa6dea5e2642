"""The AUDIT stream's replica count (P4, L1): kept on as many JetStream servers as configured, so
on a three-node cluster a node lost loses no event; a real three-node nats-server cluster."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterator

import nats
import pytest
from nats.js.api import StreamInfo
from nats.js.errors import APIError

from helios.kernel.bus import AUDIT_STREAM, Bus, ensure_audit_stream
from helios.kernel.testing.servers import ThrowawayNats, free_port

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def _cluster(size: int = 3) -> Iterator[list[ThrowawayNats]]:
    """`size` nats-servers with JetStream, routed to each other as one cluster."""
    routes = [free_port() for _ in range(size)]
    route_urls = ",".join(f"nats://127.0.0.1:{port}" for port in routes)
    nodes = [
        ThrowawayNats(
            (
                "-n",
                f"helios-{index}",
                "--cluster_name",
                "helios",
                "--cluster",
                f"nats://127.0.0.1:{port}",
                "--routes",
                route_urls,
            )
        )
        for index, port in enumerate(routes)
    ]
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.destroy()


async def _until(check: Callable[[], Awaitable[None]], what: str, seconds: float = 30.0) -> None:
    """Retry the coroutine function `check` until it returns without raising."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            await check()
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}") from None
            await asyncio.sleep(0.5)
        else:
            return


async def test_p4_audit_stream_on_one_server_has_one_replica_and_refuses_more() -> None:
    """A single (non-clustered) server keeps the stream once; asking it for three replicas is
    refused by the server itself (the setting reaches it)."""
    server = ThrowawayNats().start()
    bus = Bus(server.url, "kernel-test")
    try:
        js = await bus.jetstream()
        info = await js.stream_info(AUDIT_STREAM)
        assert info.config.num_replicas == 1
        with pytest.raises(APIError, match="replicas"):
            await ensure_audit_stream(js, 3)
    finally:
        await bus.close()
        server.destroy()


async def test_p4_l1_audit_stream_on_three_nodes_keeps_events_when_its_leader_is_lost() -> None:
    """With HELIOS_NATS_STREAM_REPLICAS=3 (and HELIOS_NATS_URL listing the three servers) the
    stream has three replicas; events published, then the stream's leader stopped, every event
    is still read from the other two nodes."""
    with _cluster() as nodes:
        servers = ",".join(node.url for node in nodes)
        bus = Bus(servers, "kernel-test", stream_replicas=3)
        try:
            holder: dict[str, StreamInfo] = {}

            async def ready() -> None:
                js = await bus.jetstream()
                holder["info"] = await js.stream_info(AUDIT_STREAM)

            await _until(ready, "the JetStream cluster and the AUDIT stream")
            info = holder["info"]
            assert info.config.num_replicas == 3
            assert info.cluster is not None
            assert len(info.cluster.replicas or []) == 2
            js = await bus.jetstream()
            ids = [str(uuid.uuid4()) for _ in range(5)]
            for event_id in ids:
                await js.publish(
                    "audit.kerneltest.replicated", b"event", headers={"Nats-Msg-Id": event_id}
                )
            leader = info.cluster.leader
        finally:
            await bus.close()
        lost = next(node for index, node in enumerate(nodes) if f"helios-{index}" == leader)
        lost.stop()
        survivors = [node.url for node in nodes if node is not lost]
        read: list[str] = []

        async def all_read() -> None:
            client = await nats.connect(survivors, connect_timeout=2)
            try:
                sub = await client.jetstream(timeout=5).pull_subscribe(
                    "audit.kerneltest.replicated", durable=None
                )
                messages = await sub.fetch(len(ids), timeout=5)
                read[:] = [m.headers["Nats-Msg-Id"] for m in messages if m.headers]
            finally:
                await client.close()
            assert read == ids

        await _until(all_read, "the events from the surviving nodes")
        assert read == ids
