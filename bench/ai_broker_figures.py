"""AI broker figures: Invoke of a read-only registered action (`recruitment.candidate.list`)
through the broker, over gRPC and through the gateway with an AI token, vs calling the target
RPC (RecruitmentService.ListCandidates) directly as the same user, in the same run.

It needs the stack's example product service (StackOptions(product_example=True)) and the demo
org (seed_demo=True): its Owner is the delegating user."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING

import httpx

from harness import Figure, measure
from helios.devstack.stack import Stack
from helios.kernel.clients import call_metadata, secure_channel
from helios.proto.ai_broker.v1 import ai_broker_pb2, ai_broker_pb2_grpc
from helios.proto.common.v1 import principal_pb2
from helios.proto.identity.v1 import identity_pb2, identity_pb2_grpc
from helios.proto.recruitment.v1 import recruitment_pb2, recruitment_pb2_grpc

if TYPE_CHECKING:
    from helios.proto.ai_broker.v1.ai_broker_pb2_grpc import AiBrokerServiceAsyncStub

__all__ = ["ai_broker_figures"]

ACTION = "recruitment.candidate.list"
DIRECT = "grpc recruitment ListCandidates (direct)"
INVOKE = f"grpc broker Invoke {ACTION}"
HTTP_INVOKE = f"http POST /api/v1/ai/invoke {ACTION}"
CALLER = "gateway"  # the identity the broker's clients and the direct call use
TIMEOUT = 60.0
ASSERTION_REFRESH_SECONDS = 30.0
REGISTRATION_WAIT_SECONDS = 60.0

Metadata = tuple[tuple[str, str | bytes], ...]


class Assertions:
    """A principal's signed assertion as the gateway forwards it, fetched again when older
    than 30 s (assertions live 60 s)."""

    def __init__(self, fetch: Callable[[], Awaitable[principal_pb2.PrincipalAssertion]]) -> None:
        self._fetch = fetch
        self._at = -math.inf
        self._metadata: Metadata = ()

    async def metadata(self) -> Metadata:
        if time.monotonic() - self._at > ASSERTION_REFRESH_SECONDS:
            self._metadata = call_metadata(assertion=await self._fetch())
            self._at = time.monotonic()
        return self._metadata


async def owner_session(url: str, credentials: dict[str, str]) -> str:
    """The demo Owner signed in through the gateway at `url` (the bench's, whose rate limits
    the run cannot reach): the token of its `helios_session`."""
    body = {"email": credentials["email"], "password": credentials["password"]}
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as client:
        response = await client.post("/api/auth/sign-in", json=body)
    if response.status_code != 200:
        raise RuntimeError(f"demo owner sign-in: {response.status_code} {response.text[:200]}")
    for header in response.headers.get_list("set-cookie"):
        morsel = SimpleCookie(header).get("helios_session")
        if morsel is not None and morsel.value:
            return morsel.value
    raise RuntimeError("sign-in answered 200 without a helios_session cookie")


async def wait_for_action(broker: AiBrokerServiceAsyncStub, owner: Assertions) -> None:
    """Wait until the example service has registered its actions (a background task of its
    start); RuntimeError after REGISTRATION_WAIT_SECONDS."""
    deadline = time.monotonic() + REGISTRATION_WAIT_SECONDS
    while True:
        listed = await broker.ListActions(
            ai_broker_pb2.ListActionsRequest(page_size=200),
            metadata=await owner.metadata(),
            timeout=TIMEOUT,
        )
        if any(a.definition.name == ACTION for a in listed.actions):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{ACTION} is not registered with the broker")
        await asyncio.sleep(0.2)


class AiSessions:
    """AI sessions of the Owner, calls going round-robin over them: enough that none reaches
    its per-minute rate limit during a figure, and at least one per call in flight (an agent
    calls one at a time, and the broker serialises each session's rate slot, so sharing
    sessions between concurrent calls would measure waiting on that lock). Each keeps its token
    and AI principal assertion."""

    def __init__(self, tokens: list[str], assertions: list[Assertions]) -> None:
        self.tokens = tokens
        self._assertions = assertions
        self._turn = 0

    @classmethod
    async def create(
        cls,
        broker: AiBrokerServiceAsyncStub,
        owner: Assertions,
        calls: int,
        concurrency: int,
    ) -> AiSessions:
        """Sessions for `calls` invocations, `concurrency` at a time, as the Owner delegates
        them."""
        request = ai_broker_pb2.CreateAiSessionRequest(purpose="bench: list candidates")
        first = await broker.CreateAiSession(
            request, metadata=await owner.metadata(), timeout=TIMEOUT
        )
        count = max(math.ceil(calls / first.session.rate_limit_per_minute) + 1, concurrency)
        tokens = [first.token]
        for _ in range(count - 1):
            created = await broker.CreateAiSession(
                request, metadata=await owner.metadata(), timeout=TIMEOUT
            )
            tokens.append(created.token)

        def resolver(token: str) -> Callable[[], Awaitable[principal_pb2.PrincipalAssertion]]:
            async def resolve() -> principal_pb2.PrincipalAssertion:
                reply = await broker.ResolveAiToken(
                    ai_broker_pb2.ResolveAiTokenRequest(token=token),
                    metadata=call_metadata(),
                    timeout=TIMEOUT,
                )
                return reply.assertion

            return resolve

        return cls(tokens, [Assertions(resolver(token)) for token in tokens])

    def next_index(self) -> int:
        self._turn = (self._turn + 1) % len(self.tokens)
        return self._turn

    async def metadata(self) -> Metadata:
        return await self._assertions[self.next_index()].metadata()

    def token(self) -> str:
        return self.tokens[self.next_index()]


def invocations_per_figure(calls: int, concurrency: int) -> int:
    """What measure() makes a figure call: its warm-up and its measured calls."""
    return max(concurrency, calls // 20) + calls


async def ai_broker_figures(stack: Stack, url: str, calls: int, concurrency: int) -> list[Figure]:
    """ListCandidates called directly with the Owner's assertion (baseline); Invoke of
    recruitment.candidate.list on the broker with AI assertions (authz Check as the user with
    actor_type ai, the session's rate slot in PostgreSQL, the invocation row and its audit
    event, the call to the example service); the same Invoke through the gateway at `url` with
    AI tokens (the gateway resolves each token)."""
    if not stack.demo_credentials or "recruitment" not in stack.ports:
        raise RuntimeError("the AI broker figures need seed_demo and product_example")
    token = await owner_session(url, stack.demo_credentials)
    certs = stack.certs(CALLER)
    async with (
        secure_channel(f"localhost:{stack.ports['identity']}", certs) as identity_channel,
        secure_channel(f"localhost:{stack.ports['ai-broker']}", certs) as broker_channel,
        secure_channel(f"localhost:{stack.ports['recruitment']}", certs) as target_channel,
    ):
        identity = identity_pb2_grpc.IdentityServiceStub(identity_channel)
        broker = ai_broker_pb2_grpc.AiBrokerServiceStub(broker_channel)
        target = recruitment_pb2_grpc.RecruitmentServiceStub(target_channel)

        async def resolve_owner() -> principal_pb2.PrincipalAssertion:
            reply = await identity.ResolveSession(
                identity_pb2.ResolveSessionRequest(session_token=token),
                metadata=call_metadata(),
                timeout=TIMEOUT,
            )
            return reply.assertion

        owner = Assertions(resolve_owner)
        started = time.perf_counter()
        await wait_for_action(broker, owner)
        per_figure = invocations_per_figure(calls, concurrency)
        grpc_sessions = await AiSessions.create(broker, owner, per_figure, concurrency)
        http_sessions = await AiSessions.create(broker, owner, per_figure, concurrency)
        listed = await target.ListCandidates(
            recruitment_pb2.ListCandidatesRequest(),
            metadata=await owner.metadata(),
            timeout=TIMEOUT,
        )
        expected = len(listed.candidates)
        if not expected:
            raise RuntimeError("the demo Owner sees no candidates")
        print(
            f"ai-broker: {len(grpc_sessions.tokens)} + {len(http_sessions.tokens)} AI sessions of "
            f"the demo Owner (round-robin, one per call in flight, under the rate limit), "
            f"{expected} "
            f"candidates, set up in {time.perf_counter() - started:.1f} s",
            flush=True,
        )

        async def direct() -> None:
            reply = await target.ListCandidates(
                recruitment_pb2.ListCandidatesRequest(),
                metadata=await owner.metadata(),
                timeout=TIMEOUT,
            )
            check_count(len(reply.candidates), expected, DIRECT)

        invoke_request = ai_broker_pb2.InvokeRequest(action=ACTION)

        async def invoke() -> None:
            reply = await broker.Invoke(
                invoke_request, metadata=await grpc_sessions.metadata(), timeout=TIMEOUT
            )
            check_output(reply, expected, INVOKE)

        async with httpx.AsyncClient(
            base_url=url,
            limits=httpx.Limits(max_connections=concurrency),
            timeout=TIMEOUT,
        ) as http:

            async def http_invoke() -> None:
                response = await http.post(
                    "/api/v1/ai/invoke",
                    json={"action": ACTION, "input": {}},
                    headers={"authorization": f"Bearer {http_sessions.token()}"},
                )
                if response.status_code != 200:
                    raise RuntimeError(
                        f"{HTTP_INVOKE}: {response.status_code} {response.text[:200]}"
                    )
                body = response.json()
                check_count(len(body["output"]["candidates"]), expected, HTTP_INVOKE)

            return [
                await measure(DIRECT, direct, calls, concurrency, DIRECT),
                await measure(INVOKE, invoke, calls, concurrency, DIRECT),
                await measure(HTTP_INVOKE, http_invoke, calls, concurrency, DIRECT, INVOKE),
            ]


def check_count(found: int, expected: int, figure: str) -> None:
    if found != expected:
        raise RuntimeError(f"{figure}: {found} candidates, expected {expected}")


def check_output(reply: ai_broker_pb2.InvokeResponse, expected: int, figure: str) -> None:
    """An Invoke reply with the target's output (never a confirmation) and its hash."""
    if reply.WhichOneof("result") != "output":
        raise RuntimeError(f"{figure}: no output in {reply}")
    if not reply.output_hash:
        raise RuntimeError(f"{figure}: no output hash")
    check_count(len(reply.output.fields["candidates"].list_value.values), expected, figure)
