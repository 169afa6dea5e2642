"""`make bench`: identity, gateway, keyvault, authz, audit and AI broker figures against same-run
baselines."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import sys
import time
from http.cookiejar import CookieJar, DefaultCookiePolicy
from http.cookies import SimpleCookie

import httpx
import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg import sql

from ai_broker_figures import ai_broker_figures
from audit_figures import audit_figures
from authz_figures import authz_figures
from harness import Figure, measure, render
from helios.devstack.stack import Stack, StackOptions
from helios.kernel.clients import call_metadata, secure_channel
from helios.kernel.testing.servers import is_listening
from helios.proto.identity.v1 import identity_pb2, identity_pb2_grpc
from keyvault_figures import keyvault_figures

Metadata = tuple[tuple[str, str | bytes], ...]
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
EMAIL, PASSWORD = "bench@example.com", "correct horse battery staple"
CREDENTIALS = {"email": EMAIL, "password": PASSWORD}
TIMEOUT = 60.0
GRPC_BASELINE, HTTP_BASELINE = "grpc Health/Check", "http GET /healthz"
DIRECT, TRANSCODED = "grpc GetCurrentUser", "http GET /api/v1/identity/me"
ARGON2_BASELINE = "raw argon2id verify, same parameters"
CACHE_COOKIE = "helios_session_cache"
ASSERTION_REFRESH_SECONDS = 30.0
# The HTTP figures go through a gateway replica like the stack's own (rate limiter included, its
# counters in PostgreSQL) whose limits the bench cannot reach: the defaults (600 requests a minute
# per IP) would answer 429 within the first figure.
BENCH_GATEWAY = {
    "HELIOS_RATE_LIMIT_PER_IP_PER_MINUTE": "100000000",
    "HELIOS_RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE": "100000000",
}


# --- the figures ------------------------------------------------------------------------------


def expect(response: httpx.Response, status: int) -> None:
    """Raise RuntimeError unless the gateway answered `status`."""
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: expected {status}, "
            f"got {response.status_code}: {response.text[:200]}"
        )


def http_client(url: str, concurrency: int) -> httpx.AsyncClient:
    """Keep-alive connections, one per call in flight; a jar that stores no cookie, so each
    request carries exactly the cookie the figure sets."""
    return httpx.AsyncClient(
        base_url=url,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        timeout=TIMEOUT,
    )


def set_cookie(response: httpx.Response, name: str) -> str:
    """The value the response sets for cookie `name`, or "" when it sets none."""
    for header in response.headers.get_list("set-cookie"):
        morsel = SimpleCookie(header).get(name)
        if morsel is not None and morsel.value:
            return morsel.value
    return ""


async def session_token(url: str) -> str:
    """Sign the bench user up and in through the gateway; the token from `helios_session`."""
    async with http_client(url, 1) as client:
        body = {**CREDENTIALS, "display_name": "Bench"}
        expect(await client.post("/api/auth/sign-up", json=body), 201)
        response = await client.post("/api/auth/sign-in", json=CREDENTIALS)
        expect(response, 200)
    token = set_cookie(response, "helios_session")
    if not token:
        raise RuntimeError("sign-in answered 200 without a helios_session cookie")
    return token


async def grpc_figures(stack: Stack, token: str, calls: int, concurrency: int) -> list[Figure]:
    """Health/Check, ResolveSession and GetCurrentUser on identity: one mTLS channel with the
    devstack certificate, all through identity's interceptor chain. GetCurrentUser carries the
    principal assertion that ResolveSession returns for the bench session, as the gateway sends
    it; the assertion lives 60 s, so it is resolved again when older than 30 s."""
    metadata = call_metadata()
    check_request = health_pb2.HealthCheckRequest()
    resolve_request = identity_pb2.ResolveSessionRequest(session_token=token)
    current_request = identity_pb2.GetCurrentUserRequest()
    target = f"localhost:{stack.ports['identity']}"
    async with secure_channel(target, stack.certs("devstack")) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        identity = identity_pb2_grpc.IdentityServiceStub(channel)
        asserted: list[tuple[float, Metadata]] = []

        async def check() -> None:
            reply = await health.Check(  # type: ignore[attr-defined]  # stubs: sync only
                check_request, metadata=metadata, timeout=TIMEOUT
            )
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                raise RuntimeError(f"identity health is {reply.status}")

        async def resolve() -> None:
            reply = await identity.ResolveSession(
                resolve_request, metadata=metadata, timeout=TIMEOUT
            )
            if not reply.assertion.signature:
                raise RuntimeError("ResolveSession answered without a signed assertion")

        async def principal_metadata() -> Metadata:
            if not asserted or time.monotonic() - asserted[0][0] > ASSERTION_REFRESH_SECONDS:
                reply = await identity.ResolveSession(
                    resolve_request, metadata=metadata, timeout=TIMEOUT
                )
                asserted[:] = [(time.monotonic(), call_metadata(assertion=reply.assertion))]
            return asserted[0][1]

        async def current_user() -> None:
            reply = await identity.GetCurrentUser(
                current_request, metadata=await principal_metadata(), timeout=TIMEOUT
            )
            if reply.user.email != EMAIL:
                raise RuntimeError(f"GetCurrentUser answered {reply.user.email!r}")

        return [
            await measure(GRPC_BASELINE, check, calls, concurrency, GRPC_BASELINE),
            await measure("grpc ResolveSession", resolve, calls, concurrency, GRPC_BASELINE),
            await measure(DIRECT, current_user, calls, concurrency, GRPC_BASELINE),
        ]


class SessionCookies:
    """The session cookie and the 60 s cache cookie (S2), kept as a browser keeps them: a
    response that sets a fresh cache cookie replaces the old one."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.cache = ""
        self.resolved = 0  # responses that set a fresh cache cookie: identity was asked

    def headers(self) -> dict[str, str]:
        cache = f"; {CACHE_COOKIE}={self.cache}" if self.cache else ""
        return {"cookie": f"helios_session={self.token}{cache}"}

    def keep(self, response: httpx.Response) -> None:
        fresh = set_cookie(response, CACHE_COOKIE)
        if fresh:
            self.cache = fresh
            self.resolved += 1


async def argon2_figure(phc: str, args: argparse.Namespace) -> Figure:
    """argon2id verification of the bench user's stored hash in this process (threads, as
    identity runs it), at the sign-in figure's concurrency: the floor under every sign-in."""
    hasher = PasswordHasher()

    async def verify() -> None:
        try:
            await asyncio.to_thread(hasher.verify, phc, PASSWORD)
        except VerifyMismatchError as exc:
            raise RuntimeError("the bench password does not verify against its hash") from exc

    calls, concurrency = args.sign_in_calls, args.sign_in_concurrency
    return await measure(ARGON2_BASELINE, verify, calls, concurrency, ARGON2_BASELINE)


async def http_figures(url: str, token: str, phc: str, args: argparse.Namespace) -> list[Figure]:
    """GET /healthz; GET /api/auth/session with the session cookie; GET /api/v1/identity/me
    (identity.GetCurrentUser transcoded) with the session and cache cookies, so the
    authentication takes the cached path; raw argon2id verify; POST /api/auth/sign-in."""
    cookie = {"cookie": f"helios_session={token}"}
    calls, concurrency = args.calls, args.concurrency
    cookies = SessionCookies(token)
    async with http_client(url, concurrency) as client:

        async def healthz() -> None:
            expect(await client.get("/healthz"), 200)

        async def session() -> None:
            expect(await client.get("/api/auth/session", headers=cookie), 200)

        async def me() -> None:
            response = await client.get("/api/v1/identity/me", headers=cookies.headers())
            expect(response, 200)
            cookies.keep(response)

        await me()  # the first authenticated request sets the cache cookie
        if not cookies.cache:
            raise RuntimeError(f"GET /api/v1/identity/me set no {CACHE_COOKIE} cookie")
        figures = [
            await measure(HTTP_BASELINE, healthz, calls, concurrency, HTTP_BASELINE),
            await measure("http GET /api/auth/session", session, calls, concurrency, HTTP_BASELINE),
            await measure(TRANSCODED, me, calls, concurrency, DIRECT, HTTP_BASELINE),
        ]
        print(
            f"{TRANSCODED}: {cookies.resolved - 1} of the measured and warm-up requests asked "
            "identity (cache cookie expired); the others took the cached path",
            flush=True,
        )
    async with http_client(url, args.sign_in_concurrency) as client:

        async def sign_in() -> None:
            expect(await client.post("/api/auth/sign-in", json=CREDENTIALS), 200)

        figures.append(await argon2_figure(phc, args))
        name = "http POST /api/auth/sign-in"
        calls, concurrency = args.sign_in_calls, args.sign_in_concurrency
        figures.append(
            await measure(name, sign_in, calls, concurrency, ARGON2_BASELINE, HTTP_BASELINE)
        )
    return figures


async def all_figures(
    stack: Stack, url: str, token: str, phc: str, args: argparse.Namespace
) -> list[Figure]:
    """Every figure, one after the other (never two at once)."""
    return [
        *await grpc_figures(stack, token, args.calls, args.concurrency),
        *await http_figures(url, token, phc, args),
        *await keyvault_figures(stack, args.calls, args.concurrency),
        *await authz_figures(stack, args.calls, args.concurrency),
        *await audit_figures(stack, args.calls, args.concurrency),
        *await ai_broker_figures(stack, url, args.calls, args.concurrency),
    ]


# --- the run ----------------------------------------------------------------------------------


def stored_argon2_hash(database_url: str) -> str:
    """The bench user's PHC string: what identity really hashed with."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT password_hash FROM identity.users WHERE email = %s", (EMAIL,)
        ).fetchone()
    if row is None:
        raise RuntimeError("the bench user is missing from identity.users")
    return str(row[0])  # $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>


def bench(database_url: str, args: argparse.Namespace) -> list[Figure]:
    """Start the stack, sign the bench user in, measure; the stack always stops."""
    # The demo org's Owner delegates to the AI broker figures' sessions; the example product
    # service is their target.
    options = StackOptions(
        database_url=database_url,
        http_port=0,
        cheap_argon2=args.cheap_argon2,
        seed_demo=True,
        product_example=True,
    )
    stack = Stack(options).start()  # stops what it started if it fails
    try:
        url = stack.start_gateway("gateway-bench", BENCH_GATEWAY)
        token = asyncio.run(session_token(url))
        kind = "cheap test parameters" if args.cheap_argon2 else "production defaults"
        phc = stored_argon2_hash(stack.database_url)
        print(f"argon2id: {phc.split('$')[3]} ({kind})", flush=True)
        return asyncio.run(all_figures(stack, url, token, phc, args))
    finally:
        stack.stop()


def arguments(argv: list[str] | None) -> argparse.Namespace:
    """The command line; the defaults are the figures' fixed sizes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cheap-argon2", action="store_true", help="test argon2 parameters")
    parser.add_argument("--calls", type=int, default=2000, help="calls per gRPC / HTTP figure")
    parser.add_argument("--concurrency", type=int, default=20, help="gRPC / HTTP in flight")
    parser.add_argument("--sign-in-calls", type=int, default=300, help="sign-ins measured")
    parser.add_argument("--sign-in-concurrency", type=int, default=10, help="sign-ins in flight")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Print the set-up, run every figure once, print the table; drop the database always."""
    args = arguments(argv)
    print(f"python {platform.python_version()}; {os.cpu_count()} CPUs shared by client and stack")
    print(
        f"gRPC and HTTP figures: {args.calls} calls, {args.concurrency} in flight; "
        f"sign-in: {args.sign_in_calls} calls, {args.sign_in_concurrency} in flight"
    )
    database = ""
    if is_listening("127.0.0.1", 5432):
        database = f"helios_bench_{secrets.token_hex(4)}"
        print(f"PostgreSQL: database {database} on 127.0.0.1:5432 (dropped at the end)")
    else:
        print("PostgreSQL: a throwaway cluster (nothing listens on 127.0.0.1:5432)")
    print("NATS: a throwaway server")
    print("HTTP: a second gateway process whose rate limits the bench cannot reach", flush=True)
    name = sql.Identifier(database)
    try:
        if database:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
        url = ADMIN_URL.rsplit("/", 1)[0] + f"/{database}" if database else ""
        figures = bench(url, args)
    finally:
        if database:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
    print()
    print(render(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
