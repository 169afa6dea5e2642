"""All of authz's use cases, built together over one unit of work and decision log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from helios.authz.ports import DecisionLog, UnitOfWork
from helios.authz.service.access import HELIOS_SERVICES, Access
from helios.authz.service.caches import SubjectCache
from helios.authz.service.catalog import CatalogService
from helios.authz.service.dangerous import DangerousService
from helios.authz.service.decisions import DecisionService
from helios.authz.service.roles import RoleService
from helios.authz.service.seeding import SeedingService
from helios.authz.service.teams import TeamService
from helios.authz.service.user_types import UserTypeService

__all__ = ["AuthzServices"]


@dataclass(frozen=True, slots=True)
class AuthzServices:
    """The use cases the RPC handlers and event consumers call."""

    decisions: DecisionService
    access: Access
    catalog: CatalogService
    roles: RoleService
    teams: TeamService
    user_types: UserTypeService
    dangerous: DangerousService
    seeding: SeedingService

    @classmethod
    def build(
        cls,
        uow: UnitOfWork,
        log: DecisionLog,
        clock: Callable[[], dt.datetime],
        *,
        product_services: frozenset[str] = frozenset(),
        cache_ttl: float = 1.0,
    ) -> AuthzServices:
        """Wire the use cases together. Helios services administer orgs; they and the
        `product_services` (mTLS identities) ask for decisions and register their permissions.
        `cache_ttl` bounds minimize_latency staleness."""
        callers = HELIOS_SERVICES | product_services
        decisions = DecisionService(uow, log, clock, callers, subjects=SubjectCache(ttl=cache_ttl))
        access = Access(decisions, HELIOS_SERVICES)
        roles = RoleService(uow, access, clock)
        return cls(
            decisions=decisions,
            access=access,
            catalog=CatalogService(uow, access, callers),
            roles=roles,
            teams=TeamService(uow, access, clock),
            user_types=UserTypeService(uow, access, clock),
            dangerous=DangerousService(uow, access),
            seeding=SeedingService(uow, roles, clock),
        )
