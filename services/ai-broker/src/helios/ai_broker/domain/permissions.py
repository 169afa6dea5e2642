"""The AI broker's permission catalog, declared in code and registered with authz at start (Z2)."""

from __future__ import annotations

from helios.proto.authz.v1 import authz_pb2

__all__ = ["AI_BROKER_PERMISSIONS"]

_OWN = (authz_pb2.SCOPE_OWN,)
_ALL = (authz_pb2.SCOPE_OWN, authz_pb2.SCOPE_TEAM, authz_pb2.SCOPE_ANY)
_ANY = (authz_pb2.SCOPE_ANY,)

# key: (one-line description, dangerous by default, scopes a grant may carry). A person delegates,
# invokes and confirms only as themselves (`own`); AI sessions and invocations of others can be
# seen or ended with `team` / `any`; the action registry is org-wide.
_DECLARED: dict[str, tuple[str, bool, tuple[authz_pb2.Scope.ValueType, ...]]] = {
    "ai.session.create": ("Delegate one's own rights to an AI for a while", False, _OWN),
    "ai.session.revoke": ("End AI sessions", False, _ALL),
    "ai.session.list": ("List AI sessions", False, _ALL),
    "ai.action.register": ("Register the actions a service performs for AIs", False, _ANY),
    "ai.action.list": ("See the actions AIs can perform", False, _ALL),
    "ai.action.invoke": ("Run an action through one's own AI session", False, _OWN),
    "ai.invocation.confirm": ("Confirm an AI's parked action, as its delegator", False, _OWN),
    "ai.invocation.reject": ("Refuse an AI's parked action, as its delegator", False, _OWN),
    "ai.invocation.read": ("See an AI invocation, its state and output", False, _ALL),
    "ai.policy.read": ("See the org's AI policy (step-up to confirm)", False, _ANY),
    "ai.policy.update": (
        "Set the org's AI policy: ask for a step-up before an AI's dangerous action runs",
        True,
        _ANY,
    ),
    "ai.prompt.build": ("Assemble a broker system prompt around one's text", False, _OWN),
    "ai.invocation.replay": (
        "Re-run a recorded read-only AI invocation to check its output hash",
        False,
        _ALL,
    ),
}

AI_BROKER_PERMISSIONS: tuple[authz_pb2.PermissionDefinition, ...] = tuple(
    authz_pb2.PermissionDefinition(
        key=key, description=text, dangerous=dangerous, allowed_scopes=scopes
    )
    for key, (text, dangerous, scopes) in sorted(_DECLARED.items())
)
"""Every permission the AI broker's RPCs require, with the flags its proto options declare."""
