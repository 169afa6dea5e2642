"""All of the broker's use cases, built together over one unit of work."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from helios.ai_broker.ports import Authz, Clock, PrincipalSigner, UnitOfWork
from helios.ai_broker.ports.invocations import ActionTargets
from helios.ai_broker.service.ai_sessions import AiSessionService
from helios.ai_broker.service.confirmations import ConfirmationService
from helios.ai_broker.service.invocations import (
    DEFAULT_CONFIRMATION_TTL,
    InvocationRunner,
    InvocationService,
)
from helios.ai_broker.service.policies import AiPolicyService
from helios.ai_broker.service.prompts import PromptService
from helios.ai_broker.service.registry import RegistryService
from helios.ai_broker.service.replay import ReplayService
from helios.kernel.step_up import StepUpVerifier

__all__ = ["BrokerServices"]


@dataclass(frozen=True, slots=True)
class BrokerServices:
    """The use cases the RPC handlers call."""

    prompts: PromptService
    sessions: AiSessionService
    registry: RegistryService
    invocations: InvocationService
    confirmations: ConfirmationService
    replay: ReplayService
    policies: AiPolicyService

    @classmethod
    def build(
        cls,
        uow: UnitOfWork,
        clock: Clock,
        authz: Authz,
        signer: PrincipalSigner,
        *,
        ai_session_rate_limit: int = 60,
        action_targets: Mapping[str, str] | None = None,
        targets: ActionTargets,
        confirmation_ttl: dt.timedelta = DEFAULT_CONFIRMATION_TTL,
        step_up: StepUpVerifier | None = None,
    ) -> BrokerServices:
        """Wire the use cases together; `ai_session_rate_limit` is the invocations per minute
        a new AI session gets; `action_targets` maps the product services whose actions the broker
        calls to their addresses; `targets` calls those services; a parked invocation waits
        `confirmation_ttl` for its person; `step_up` checks identity's step-up tokens (without
        it, a confirmation the org's policy wants stepped up cannot happen)."""
        runner = InvocationRunner(uow, clock, targets)
        return cls(
            prompts=PromptService(authz),
            sessions=AiSessionService(uow, clock, authz, signer, ai_session_rate_limit),
            registry=RegistryService(uow, clock, authz, frozenset(action_targets or {})),
            invocations=InvocationService(uow, clock, authz, runner, confirmation_ttl),
            confirmations=ConfirmationService(uow, clock, authz, runner, step_up),
            replay=ReplayService(uow, clock, authz, targets),
            policies=AiPolicyService(uow, clock, authz),
        )
