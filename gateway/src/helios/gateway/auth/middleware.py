"""Authentication (and CSRF) for every request, before any route runs (pure ASGI middleware)."""

from __future__ import annotations

from collections.abc import Collection

import grpc
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helios.gateway.auth.ai_tokens import AI_TOKEN_PREFIX, AiTokenRoutes, resolve_ai_token
from helios.gateway.auth.api_keys import API_KEY_PREFIX, ApiKeyRoutes, resolve_api_key
from helios.gateway.auth.cache_cookie import CACHE_COOKIE, CACHE_SECONDS, SessionCache
from helios.gateway.auth.caller import ANONYMOUS, Caller
from helios.gateway.auth.csrf import SAFE_METHODS, check_csrf, check_origin
from helios.gateway.auth.revocations import Revocations
from helios.gateway.cookies import SESSION_COOKIE
from helios.gateway.edge import client_ip, user_agent
from helios.gateway.errors import EdgeError, error_response, rpc_error_response
from helios.gateway.transcoding.catalog import load_bindings
from helios.gateway.upstream import Upstream
from helios.kernel.clients import call_metadata
from helios.proto.identity.v1 import identity_pb2

__all__ = ["Authentication"]


class Authentication:
    """Sets `request.state.caller` from the session cookie, or refuses the request.

    - session cookie + valid cache cookie: the cached assertion, no call to identity (S2),
      unless `revocations` lists its session or user (S3);
    - session cookie otherwise: identity.ResolveSession, and a fresh cache cookie on the response
      (never for an impersonation: it is resolved on every request, S6); an unknown, revoked or
      expired session makes the caller anonymous and clears a cache cookie sent with it;
    - `Authorization: Bearer hk_...`: an API key, resolved by identity on every request; it may
      call only transcoded routes whose permission it carries (403 otherwise, /api/auth included);
    - `Authorization: Bearer hai_...`: an AI token, resolved by the AI broker on every request
      into an AI principal; it may call only the AI agent routes (403 otherwise, I1); any other
      bearer token is refused with 401;
    - CSRF: a state-changing request authenticated by cookie needs an allowed Origin and the
      double-submit token; an anonymous one is refused when its Origin is foreign.
    """

    def __init__(
        self,
        app: ASGIApp,
        cache: SessionCache,
        allowed_origins: Collection[str],
        *,
        secure: bool,
        revocations: Revocations | None = None,
    ) -> None:
        self.app = app
        self._cache = cache
        self._revocations = Revocations() if revocations is None else revocations
        self._allowed = frozenset(allowed_origins)
        self._secure = secure
        bindings = load_bindings()
        self._api_key_routes = ApiKeyRoutes(bindings)
        self._ai_token_routes = AiTokenRoutes(bindings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        # Request() accepts only http scopes; a WebSocket handshake is read the same way.
        http_scope = (
            scope if scope["type"] == "http" else {**scope, "type": "http", "method": "GET"}
        )
        request = Request(http_scope)
        try:
            caller, fresh_cache = await self._authenticate(request)
            if scope["type"] == "http":
                if caller.via == "session":
                    check_csrf(request, self._allowed)
                elif request.method not in SAFE_METHODS:
                    check_origin(request, self._allowed, required=False)
        except EdgeError as exc:
            await error_response(exc.status, exc.code, exc.message)(scope, receive, send)
            return
        except grpc.aio.AioRpcError as exc:
            await rpc_error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        if fresh_cache is None:
            await self.app(scope, receive, send)
            return
        max_age = CACHE_SECONDS if fresh_cache else 0
        cookie = (
            f"{CACHE_COOKIE}={fresh_cache}; Max-Age={max_age}; Path=/; HttpOnly; "
            f"SameSite=lax{'; Secure' if self._secure else ''}"
        ).encode()

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    async def _authenticate(self, request: Request) -> tuple[Caller, str | None]:
        """The caller, and the cache cookie to set: a value, "" to clear it, None to leave it."""
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme:
            if scheme.lower() != "bearer":
                raise EdgeError(
                    401, "UNAUTHENTICATED", f"unsupported authorization scheme {scheme!r}"
                )
            key = credentials.strip()
            if key.startswith(AI_TOKEN_PREFIX):
                caller = await resolve_ai_token(request, key)
                self._ai_token_routes.check(request.method, request.url.path)
                return caller, None
            if not key.startswith(API_KEY_PREFIX):
                raise EdgeError(
                    401,
                    "UNAUTHENTICATED",
                    "the only bearer tokens accepted are API keys and AI tokens",
                )
            caller, permissions = await resolve_api_key(request, key)
            self._api_key_routes.check(request.method, request.url.path, permissions)
            return caller, None
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            return ANONYMOUS, None
        sent_cache = request.cookies.get(CACHE_COOKIE, "")
        cached = self._cache.open(token, sent_cache)
        if cached is not None and not self._revocations.refuses(cached[0]):
            return Caller(principal=cached[0], assertion=cached[1], via="session"), None
        upstream: Upstream = request.app.state.upstream
        try:
            reply = await upstream.identity.ResolveSession(
                identity_pb2.ResolveSessionRequest(session_token=token),
                metadata=call_metadata(
                    client_ip=client_ip(request), user_agent=user_agent(request)
                ),
                timeout=upstream.timeout,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                return ANONYMOUS, "" if sent_cache else None
            raise
        caller = Caller(principal=reply.principal, assertion=reply.assertion, via="session")
        if reply.principal.impersonator_id:
            return caller, "" if sent_cache else None
        return caller, self._cache.seal(token, reply.assertion)
