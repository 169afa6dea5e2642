"""Which routes an AI token opens at the edge (I1): the four agent RPCs, nothing else."""

from __future__ import annotations

import pytest

from helios.gateway.auth.ai_tokens import AI_AGENT_RPCS, AI_TOKEN_PREFIX, AiTokenRoutes
from helios.gateway.auth.api_keys import API_KEY_PREFIX
from helios.gateway.errors import EdgeError
from helios.gateway.transcoding.catalog import load_bindings

ROUTES = AiTokenRoutes(load_bindings())
INVOCATION = "/api/v1/ai/invocations/6f1c2d4e-0000-4000-8000-000000000001"


def test_i1_the_agent_rpcs_are_invoke_actions_invocation_and_prompts() -> None:
    """I1: exactly Invoke, ListActions, GetInvocation and BuildPrompt of the broker; the prefix
    is not an API key's."""
    assert {rpc.rsplit(".", 1)[1] for rpc in AI_AGENT_RPCS} == {
        "Invoke",
        "ListActions",
        "GetInvocation",
        "BuildPrompt",
    }
    assert all(
        rpc.startswith("helios.proto.ai_broker.v1.AiBrokerService.") for rpc in AI_AGENT_RPCS
    )
    assert not AI_TOKEN_PREFIX.startswith(API_KEY_PREFIX)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/ai/invoke"),
        ("GET", "/api/v1/ai/actions"),
        ("GET", INVOCATION),
        ("POST", "/api/v1/ai/prompts:build"),
    ],
)
def test_i1_ai_token_opens_the_agent_routes(method: str, path: str) -> None:
    """I1: the agent routes pass."""
    ROUTES.check(method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/ai/sessions"),
        ("POST", "/api/v1/ai/sessions"),
        ("POST", "/api/v1/ai/sessions/abc:revoke"),
        ("POST", f"{INVOCATION}:confirm"),
        ("POST", f"{INVOCATION}:reject"),
        ("POST", f"{INVOCATION}:replayCheck"),
        ("GET", "/api/v1/identity/me"),
        ("POST", "/api/v1/identity/api-keys"),
        ("GET", "/api/v1/authz/roles"),
        ("GET", "/api/auth/session"),
        ("POST", "/api/auth/sign-out"),
        ("GET", "/api/ws"),
        ("GET", "/healthz"),
        ("GET", "/api/v1/no/such/route"),
        ("GET", "/api/v1/ai/invoke"),
        ("DELETE", "/api/v1/ai/actions"),
    ],
)
def test_i1_ai_token_is_refused_everywhere_else(method: str, path: str) -> None:
    """I1: session management, confirmation, replay, every other service, the cookie routes,
    operations, unknown paths and wrong verbs are 403 for an AI token."""
    with pytest.raises(EdgeError) as refused:
        ROUTES.check(method, path)
    assert (refused.value.status, refused.value.code) == (403, "PERMISSION_DENIED")
