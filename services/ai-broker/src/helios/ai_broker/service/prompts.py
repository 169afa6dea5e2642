"""BuildPrompt (I6): a shipped system prompt around the caller's text, for users and their AIs.

The caller needs `ai.prompt.build` on its own behalf (scope `own`) in its own org, as authz
decides for its principal: a person, or an AI acting as its delegating user. The AI session's
narrowing is not applied: it limits which registered actions the AI may perform, and building a
prompt reads and changes nothing. Nothing is stored, so nothing is audited here; the prompt's
hash reaches the audit rows through Invoke's `system_prompt_hash`."""

from __future__ import annotations

from collections.abc import Callable

from helios.ai_broker.domain.prompts import AssembledPrompt, assemble, random_delimiter
from helios.ai_broker.ports import Authz
from helios.ai_broker.prompts import load_system_prompt
from helios.kernel.context import CallContext
from helios.kernel.errors import PermissionDeniedError

__all__ = ["PROMPT_BUILD", "PromptService"]

PROMPT_BUILD = "ai.prompt.build"


class PromptService:
    """Assembles prompts; holds no state and no storage."""

    def __init__(self, authz: Authz, new_delimiter: Callable[[], str] = random_delimiter) -> None:
        self._authz = authz
        self._new_delimiter = new_delimiter

    async def build(
        self, name: str, version: str, user_text: str, ctx: CallContext
    ) -> AssembledPrompt:
        """The system prompt `name` at `version` (empty: the newest) followed by `user_text`
        in a block of a fresh delimiter. Raises UnauthenticatedError without a principal,
        PermissionDeniedError without `ai.prompt.build`, InvalidArgumentError for a malformed
        name, version or text, NotFoundError for a prompt the broker does not ship."""
        principal = ctx.require_principal()
        if not principal.org_id:
            raise PermissionDeniedError("the caller belongs to no org")
        decision = await self._authz.check(
            principal, PROMPT_BUILD, org_id=principal.org_id, owner_id=principal.actor_id
        )
        if not decision.allowed:
            raise PermissionDeniedError(f"{PROMPT_BUILD} is not granted to you in this org")
        return assemble(load_system_prompt(name, version), user_text, self._new_delimiter)
